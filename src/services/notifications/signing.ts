// Standard Webhooks signing: whsec_ secrets, and the v1 HMAC-SHA256 signature of "id.timestamp.body".
import { createHmac, randomBytes } from 'node:crypto'

const PREFIX = 'whsec_'
// The spec asks for 24 to 64 bytes of key; 32 is what HMAC-SHA256 uses fully.
const GENERATED_KEY_BYTES = 32
const MIN_KEY_BYTES = 24

export class SecretError extends Error {
  override name = 'SecretError'
}

/** A new secret, whsec_ then 32 random bytes in base64. */
export function generateSecret (): string {
  return PREFIX + randomBytes(GENERATED_KEY_BYTES).toString('base64')
}

/** NOTIFY_SECRET's comma-separated whsec_ list; the first one is the newest, all of them sign (rotation). */
export function parseSecrets (list: string): string[] {
  const secrets = list.split(',').map((secret) => secret.trim()).filter(Boolean)
  for (const secret of secrets) keyOf(secret)
  return secrets
}

function keyOf (secret: string): Buffer {
  if (!secret.startsWith(PREFIX)) throw new SecretError('a notification secret must start with whsec_')
  const base64 = secret.slice(PREFIX.length)
  const key = Buffer.from(base64, 'base64')
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || key.length < MIN_KEY_BYTES) {
    throw new SecretError(`a notification secret must be whsec_ followed by at least ${MIN_KEY_BYTES} bytes in base64`)
  }
  return key
}

export type SignedHeaders = { 'webhook-id': string, 'webhook-timestamp': string, 'webhook-signature': string }

/** Signs with every configured secret (keys decoded once). */
export class Signer {
  readonly #keys: Buffer[]

  constructor (readonly secrets: string[]) {
    if (secrets.length === 0) throw new SecretError('at least one notification secret is needed')
    this.#keys = secrets.map(keyOf)
  }

  /** The three Standard Webhooks headers; one v1 signature per secret, space-separated, so consumers can rotate. */
  headers (id: string, at: Date, body: string): SignedHeaders {
    const timestamp = String(Math.floor(at.getTime() / 1000))
    const signed = `${id}.${timestamp}.${body}`
    const signatures = this.#keys.map((key) => `v1,${createHmac('sha256', key).update(signed).digest('base64')}`)
    return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signatures.join(' ') }
  }
}
