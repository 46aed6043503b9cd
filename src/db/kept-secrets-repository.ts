// All SQL on the secrets generated on first start (notification_secrets, download_link_secrets): statements prepared
// once, synchronous methods.
import type { Db } from './database.js'
import type { KeptSecretKind } from '../services/secrets-storage.js'

// Fixed table names, never input: the same two statements for each kind.
const TABLES: Record<KeptSecretKind, string> = { notification: 'notification_secrets', download_link: 'download_link_secrets' }

type Statements = {
  latest: ReturnType<typeof latestStatement>
  insert: ReturnType<typeof insertStatement>
}

const latestStatement = (db: Db, table: string) => db.prepare<[], { secret: string }>(`SELECT secret FROM ${table} ORDER BY seq DESC LIMIT 1`)
const insertStatement = (db: Db, table: string) => db.prepare<{ secret: string, at: string }>(`INSERT INTO ${table} (secret, created_at) VALUES (@secret, @at)`)

export class KeptSecretsRepository {
  readonly #statements: Record<KeptSecretKind, Statements>

  constructor (db: Db) {
    const of = (table: string): Statements => ({ latest: latestStatement(db, table), insert: insertStatement(db, table) })
    this.#statements = { notification: of(TABLES.notification), download_link: of(TABLES.download_link) }
  }

  /** The newest kept secret of the kind: the one in force. */
  latest (kind: KeptSecretKind): string | undefined { return this.#statements[kind].latest.get()?.secret }
  insert (kind: KeptSecretKind, secret: string, at: string): void { this.#statements[kind].insert.run({ secret, at }) }
}
