// Where the signing secrets are kept, on this replica's engine: the storage the notification and download-link
// plugins load their secrets from.
import fp from 'fastify-plugin'
import { PostgresSecretsStorage } from '../db/postgres/secrets-storage.js'
import { SqliteSecretsStorage } from '../db/sqlite-secrets-storage.js'
import type { SecretsStorage } from '../services/secrets-storage.js'
import type { Engine } from './database.js'

declare module 'fastify' {
  interface FastifyInstance {
    secretsStorage: SecretsStorage
  }
}

/** The secrets storage of the engine. */
export function secretsStorageOf (engine: Engine): SecretsStorage {
  return engine.kind === 'sqlite' ? new SqliteSecretsStorage(engine.db) : new PostgresSecretsStorage(engine.pool)
}

export default fp(async (app) => {
  app.decorate('secretsStorage', secretsStorageOf(app.engine))
}, { name: 'secrets', dependencies: ['database'] })
