// Per-task callback tokens: "<task id>.<random secret>" in the callback URL path; only the secret's hash is stored.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

// 32 random bytes: unguessable, and 43 URL-safe characters in the path.
const SECRET_BYTES = 32
const TOKEN_PATTERN = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/

export function sha256 (value: string | Buffer): Buffer {
  return createHash('sha256').update(value).digest()
}

export function newCallbackToken (taskId: string): { token: string, hash: Buffer } {
  const secret = randomBytes(SECRET_BYTES).toString('base64url')
  return { token: `${taskId}.${secret}`, hash: sha256(secret) }
}

/** Splits a token into the task id it names and its secret; null when it is not one of ours. */
export function parseCallbackToken (token: string): { id: string, secret: string } | null {
  const match = TOKEN_PATTERN.exec(token)
  return match ? { id: match[1]!, secret: match[2]! } : null
}

export function secretMatches (secret: string, storedHash: Buffer): boolean {
  const hash = sha256(secret)
  return hash.length === storedHash.length && timingSafeEqual(hash, storedHash)
}
