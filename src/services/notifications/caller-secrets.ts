// Each caller's own Standard Webhooks secret for its tasks' notify_url: generated on first use, rotated with a grace period.
import type { Log } from '../task-store.js'
import { fingerprint, type CallerSecretRow, type SecretsStorage } from '../secrets-storage.js'
import { generateSecret, Signer } from './signing.js'

// After a rotation the old secret keeps signing beside the new one this long, so consumers can switch without a gap.
export const ROTATION_GRACE_MS = 24 * 60 * 60 * 1000

export type CallerSecret = { secret: string, created_at: string, expires_at: string | null }

/**
 * Read through, no cache: each message's signer asks the database (one indexed read of a row or two per attempt),
 * so a rotation on any replica signs every replica's next message, with no window in which one still signs with
 * the old secret alone.
 */
export class CallerSecrets {
  constructor (
    private readonly storage: SecretsStorage,
    private readonly log: Log,
    private readonly clock: () => number = Date.now
  ) {}

  /** The caller's secrets that sign now, newest (current) first; the first use generates the caller's secret. */
  async of (caller: string): Promise<CallerSecret[]> {
    const at = new Date(this.clock()).toISOString()
    const rows = await this.storage.callerSigning(caller, at)
    if (rows.some((row) => row.expires_at === null)) return rows.map(view)
    const secret = generateSecret()
    // Another replica's first use may win: then its secret is the caller's, and this one is forgotten unlogged.
    if (await this.storage.addCallerSecret(caller, secret, at)) this.#logged(caller, secret, 'generated')
    return (await this.storage.callerSigning(caller, at)).map(view)
  }

  /** A new current secret; the one it replaces signs beside it for ROTATION_GRACE_MS. Returns the secrets now in force. */
  async rotate (caller: string): Promise<CallerSecret[]> {
    const now = this.clock()
    const at = new Date(now).toISOString()
    const secret = generateSecret()
    await this.storage.rotateCallerSecret(caller, secret, at, new Date(now + ROTATION_GRACE_MS).toISOString())
    this.#logged(caller, secret, 'rotated')
    return (await this.storage.callerSigning(caller, at)).map(view)
  }

  /** The secrets that sign a message for this caller, newest first. */
  async signing (caller: string): Promise<string[]> {
    return (await this.of(caller)).map(({ secret }) => secret)
  }

  #logged (caller: string, secret: string, what: 'generated' | 'rotated'): void {
    // Secrets never reach the logs: only a fingerprint, so an operator can tell which one a consumer holds.
    this.log.info({ caller, secret_sha256: fingerprint(secret) }, `notification signing secret ${what}`)
  }
}

const view = (row: CallerSecretRow): CallerSecret => ({ secret: row.secret, created_at: row.created_at, expires_at: row.expires_at })

export type SigningPolicy = {
  callers: CallerSecrets
  /** NOTIFY_SECRET's secrets, else the generated operator secret: they sign what goes to NOTIFY_URL. */
  operator: string[]
  /** NOTIFY_SECRET's secrets when it is set: they sign every message, so existing consumers keep verifying. */
  everywhere: string[]
  /** NOTIFY_URL: a task whose notify_url is the same URL gets one message, signed for both. */
  globalUrl?: string | undefined
  /** The task's own notify_url (undefined once the task is gone). */
  notifyUrlOf: (taskSeq: number) => Promise<string | null | undefined>
}

/**
 * Which secrets sign one delivery: a message to the task's own notify_url is signed with its caller's secrets (so no
 * other caller can forge it); anything else went to the operator's NOTIFY_URL and is signed with the operator's.
 * NOTIFY_SECRET, when set, signs every message besides. Decided at each attempt, so a retry after a rotation carries
 * the new secret's signature.
 */
export function signerFor (policy: SigningPolicy): (delivery: { task_seq: number, caller: string, url: string }) => Promise<Signer> {
  return async (delivery) => {
    const own = await policy.notifyUrlOf(delivery.task_seq) === delivery.url
    const global = !own || delivery.url === policy.globalUrl
    const secrets = [...(own ? await policy.callers.signing(delivery.caller) : []), ...policy.everywhere, ...(global ? policy.operator : [])]
    return new Signer([...new Set(secrets)])
  }
}
