// All SQL on the secrets generated on first start (notification_secrets, download_link_secrets): statements prepared
// once, synchronous methods.
import type Database from 'better-sqlite3'
import type { Db } from './database.js'
import type { KeptSecretKind } from '../services/secrets-storage.js'

type Statements = { latest: Database.Statement<[], { secret: string }>, insert: Database.Statement<{ secret: string, at: string }> }

// The same two statements on each kind's table (a fixed name, never input); the newest row is the secret in force.
const statementsOn = (db: Db, table: string): Statements => ({
  latest: db.prepare(`SELECT secret FROM ${table} ORDER BY seq DESC LIMIT 1`),
  insert: db.prepare(`INSERT INTO ${table} (secret, created_at) VALUES (@secret, @at)`)
})

export class KeptSecretsRepository {
  readonly #statements: Record<KeptSecretKind, Statements>

  constructor (db: Db) {
    this.#statements = { notification: statementsOn(db, 'notification_secrets'), download_link: statementsOn(db, 'download_link_secrets') }
  }

  latest (kind: KeptSecretKind): string | undefined { return this.#statements[kind].latest.get()?.secret }
  insert (kind: KeptSecretKind, secret: string, at: string): void { this.#statements[kind].insert.run({ secret, at }) }
}
