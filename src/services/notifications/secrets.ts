// The operator's signing secrets: NOTIFY_SECRET when configured, else one generated on first start and kept in the database.
import { fingerprint, type SecretsStorage } from '../secrets-storage.js'
import type { Log } from '../task-store.js'
import { now } from '../task-store.js'
import { generateSecret, parseSecrets } from './signing.js'

export type SigningSecrets = { secrets: string[], source: 'config' | 'generated' }

export async function loadSigningSecrets (storage: SecretsStorage, configured: string | undefined, log: Log): Promise<SigningSecrets> {
  if (configured) return { secrets: parseSecrets(configured), source: 'config' }
  // A candidate every start: only the first start's is kept, and replicas starting together get the same one.
  const { secret, generated } = await storage.keep('notification', generateSecret(), now())
  if (!generated) return { secrets: [secret], source: 'generated' }
  // Secrets never reach the logs: the generation is logged once with a fingerprint; the API shows the secret itself.
  log.warn({ notify_secret_sha256: fingerprint(secret) }, 'NOTIFY_SECRET is not set: generated a notification signing secret and kept it in the database; it signs what goes to NOTIFY_URL; an admin (ADMIN_TOKENS) reads it at GET /v1/notifications/secret, or set NOTIFY_SECRET')
  return { secrets: [secret], source: 'generated' }
}
