// Signed download links of this service: no bearer header needed, like MiniMax's own links, but short-lived and
// bound to one task and one purpose by an HMAC, with the expiry in the URL.
import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'
import { fingerprint, type SecretsStorage } from './secrets-storage.js'
import type { Log } from './task-store.js'
import { now } from './task-store.js'

/** What a link is for; part of the signed text, so a link for one purpose never opens another. */
export type LinkPurpose = 'video'

export type SignedLink = { url: string, expires_at: string }

export type LinkCheck = 'ok' | 'expired' | 'invalid'

// 32 random bytes: the HMAC-SHA256 key length.
const SECRET_BYTES = 32
// base64url of a SHA-256 HMAC: 43 characters.
export const SIGNATURE_PATTERN = '^[A-Za-z0-9_-]{43}$'

export class DownloadLinks {
  // A key object made once: createHmac with raw bytes would import them again for every link.
  readonly #key: KeyObject

  constructor (secret: string, private readonly baseUrl: string) {
    this.#key = createSecretKey(Buffer.from(secret, 'utf8'))
  }

  /** The path every signed video link points at (under PUBLIC_BASE_URL). */
  static path (taskId: string): string {
    return `/v1/files/download/${encodeURIComponent(taskId)}`
  }

  /** A link to the task's video, valid for ttlSeconds from nowMs (the expiry is rounded up to a whole second). */
  sign (taskId: string, purpose: LinkPurpose, ttlSeconds: number, nowMs: number = Date.now()): SignedLink {
    const expires = Math.ceil(nowMs / 1000) + ttlSeconds
    // The purpose is not in the URL: each route checks with its own, so a link signed for another purpose fails. Both
    // values are URL-safe as they are (digits; base64url), so the query is written without URLSearchParams' encoding.
    const query = `expires=${expires}&signature=${this.#mac(taskId, purpose, expires)}`
    return { url: `${this.baseUrl}${DownloadLinks.path(taskId)}?${query}`, expires_at: new Date(expires * 1000).toISOString() }
  }

  /** Whether a presented link is one we signed for this task and purpose, and still alive. */
  check (taskId: string, purpose: LinkPurpose, expires: number, signature: string, nowMs: number = Date.now()): LinkCheck {
    const expected = Buffer.from(this.#mac(taskId, purpose, expires))
    const presented = Buffer.from(signature)
    // The signature is checked before the expiry, so an altered expiry reads as altered, not as expired.
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return 'invalid'
    return expires * 1000 <= nowMs ? 'expired' : 'ok'
  }

  #mac (taskId: string, purpose: string, expires: number): string {
    // Newline-separated: none of the three can contain a newline (ids and purposes are schema-checked), so no
    // two different (task, purpose, expiry) triples sign the same text.
    return createHmac('sha256', this.#key).update(`s2v-download-link/1\n${purpose}\n${taskId}\n${expires}`).digest('base64url')
  }
}

/** DOWNLOAD_LINK_SECRET when configured, else a key generated on first start and kept in the database. */
export async function loadLinkSecret (storage: SecretsStorage, configured: string | undefined, log: Log): Promise<{ secret: string, source: 'config' | 'generated' }> {
  if (configured) return { secret: configured, source: 'config' }
  // A candidate every start: only the first start's is kept, and replicas starting together get the same one.
  const { secret, generated } = await storage.keep('download_link', randomBytes(SECRET_BYTES).toString('base64url'), now())
  // Secrets never reach the logs: only a fingerprint, so two instances can be compared.
  if (generated) log.warn({ download_link_secret_sha256: fingerprint(secret) }, 'DOWNLOAD_LINK_SECRET is not set: generated a signing key for download links and kept it in the database; instances sharing this database share it, others need DOWNLOAD_LINK_SECRET')
  return { secret, source: 'generated' }
}
