// Where the signing secrets are kept, as the services see them: one asynchronous interface, one implementation per
// engine (src/db/sqlite-secrets-storage.ts, src/db/postgres/secrets-storage.ts).
import { createHash } from 'node:crypto'
import type { CallerSecretRow } from '../db/caller-secrets-repository.js'

export type { CallerSecretRow }

/** The secrets generated on first start and kept: the operator's notification secret, the download links' key. */
export type KeptSecretKind = 'notification' | 'download_link'

export interface SecretsStorage {
  /**
   * The kept secret of this kind; when none is kept yet, `candidate` becomes it. Of replicas asking at once on an
   * empty database, one candidate wins and every one gets that one (generated: whether it was this call's).
   */
  keep: (kind: KeptSecretKind, candidate: string, at: string) => Promise<{ secret: string, generated: boolean }>
  /** The caller's secrets that sign at `now`, newest (the current one) first. */
  callerSigning: (caller: string, now: string) => Promise<CallerSecretRow[]>
  /** Keeps `secret` as the caller's current one unless it has one already (another replica's, say); false then. */
  addCallerSecret: (caller: string, secret: string, at: string) => Promise<boolean>
  /**
   * At once: forgets the caller's secrets expired at `at`, gives the current one an end (`retiredUntil`) and keeps
   * `secret` as the new current one. Two rotations at once both happen, one after the other.
   */
  rotateCallerSecret: (caller: string, secret: string, at: string, retiredUntil: string) => Promise<void>
}

/** What the logs show of a secret: enough to tell two apart, nothing to sign with. */
export function fingerprint (secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 12)
}
