// The signing secrets on SQLite: each method one IMMEDIATE transaction, so a read and the write it decides are one
// step even when another process shares the file.
import type { Db } from './database.js'
import { CallerSecretsRepository, type CallerSecretRow } from './caller-secrets-repository.js'
import { KeptSecretsRepository } from './kept-secrets-repository.js'
import type { KeptSecretKind, SecretsStorage } from '../services/secrets-storage.js'

export class SqliteSecretsStorage implements SecretsStorage {
  readonly #kept: KeptSecretsRepository
  readonly #callers: CallerSecretsRepository
  readonly #immediate: <T>(fn: () => T) => T

  constructor (db: Db) {
    this.#kept = new KeptSecretsRepository(db)
    this.#callers = new CallerSecretsRepository(db)
    const transaction = db.transaction((fn: () => unknown) => fn())
    this.#immediate = <T>(fn: () => T) => transaction.immediate(fn) as T
  }

  async keep (kind: KeptSecretKind, candidate: string, at: string): Promise<{ secret: string, generated: boolean }> {
    return this.#immediate(() => {
      const kept = this.#kept.latest(kind)
      if (kept !== undefined) return { secret: kept, generated: false }
      this.#kept.insert(kind, candidate, at)
      return { secret: candidate, generated: true }
    })
  }

  async callerSigning (caller: string, now: string): Promise<CallerSecretRow[]> {
    return this.#callers.signing(caller, now)
  }

  async addCallerSecret (caller: string, secret: string, at: string): Promise<boolean> {
    return this.#immediate(() => {
      if (this.#callers.signing(caller, at).some((row) => row.expires_at === null)) return false
      this.#callers.insert(caller, secret, at)
      return true
    })
  }

  async rotateCallerSecret (caller: string, secret: string, at: string, retiredUntil: string): Promise<void> {
    this.#immediate(() => {
      this.#callers.purgeExpired(caller, at)
      this.#callers.retireCurrent(caller, retiredUntil)
      this.#callers.insert(caller, secret, at)
    })
  }
}
