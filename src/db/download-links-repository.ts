// All SQL on the generated signing key of download links: statements prepared once.
import type { Db } from './database.js'

export class DownloadLinksRepository {
  readonly #latest
  readonly #insert

  constructor (db: Db) {
    this.#latest = db.prepare<[], { secret: string }>('SELECT secret FROM download_link_secrets ORDER BY seq DESC LIMIT 1')
    this.#insert = db.prepare<{ secret: string, at: string }>('INSERT INTO download_link_secrets (secret, created_at) VALUES (@secret, @at)')
  }

  latestSecret (): string | undefined { return this.#latest.get()?.secret }
  insertSecret (secret: string, at: string): void { this.#insert.run({ secret, at }) }
}
