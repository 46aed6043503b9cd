// All SQL on the operator's generated notification signing secret (when NOTIFY_SECRET is not set): statements prepared once.
import type { Db } from './database.js'

export class NotificationSecretsRepository {
  readonly #latest
  readonly #insert

  constructor (db: Db) {
    this.#latest = db.prepare<[], { secret: string }>('SELECT secret FROM notification_secrets ORDER BY seq DESC LIMIT 1')
    this.#insert = db.prepare<{ secret: string, at: string }>('INSERT INTO notification_secrets (secret, created_at) VALUES (@secret, @at)')
  }

  latestSecret (): string | undefined { return this.#latest.get()?.secret }
  insertSecret (secret: string, at: string): void { this.#insert.run({ secret, at }) }
}
