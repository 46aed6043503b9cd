// All SQL on the callers' own signing secrets: statements prepared once, synchronous methods (transactions: sqlite-secrets-storage.ts).
import type { Db } from './database.js'

export type CallerSecretRow = {
  seq: number
  caller: string
  secret: string
  created_at: string
  /** NULL for the current secret; a rotated-out one signs until then. */
  expires_at: string | null
}

export class CallerSecretsRepository {
  readonly #signing
  readonly #insert
  readonly #retireCurrent
  readonly #purgeExpired

  constructor (readonly db: Db) {
    this.#signing = db.prepare<{ caller: string, now: string }, CallerSecretRow>(`
      SELECT * FROM caller_secrets WHERE caller = @caller AND (expires_at IS NULL OR expires_at > @now) ORDER BY seq DESC`)
    this.#insert = db.prepare<{ caller: string, secret: string, at: string }>(
      'INSERT INTO caller_secrets (caller, secret, created_at) VALUES (@caller, @secret, @at)')
    this.#retireCurrent = db.prepare<{ caller: string, expires_at: string }>(
      'UPDATE caller_secrets SET expires_at = @expires_at WHERE caller = @caller AND expires_at IS NULL')
    this.#purgeExpired = db.prepare<{ caller: string, now: string }>(
      'DELETE FROM caller_secrets WHERE caller = @caller AND expires_at IS NOT NULL AND expires_at <= @now')
  }

  /** The caller's secrets that sign now, newest (the current one) first. */
  signing (caller: string, now: string): CallerSecretRow[] { return this.#signing.all({ caller, now }) }
  insert (caller: string, secret: string, at: string): void { this.#insert.run({ caller, secret, at }) }
  /** Gives the current secret an end; returns whether there was one. */
  retireCurrent (caller: string, expiresAt: string): boolean { return this.#retireCurrent.run({ caller, expires_at: expiresAt }).changes === 1 }
  /** Forgets the caller's secrets that no longer sign: a secret is kept no longer than it is needed. */
  purgeExpired (caller: string, now: string): void { this.#purgeExpired.run({ caller, now }) }
}
