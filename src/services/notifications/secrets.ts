// The operator's signing secrets: NOTIFY_SECRET when configured, else one generated on first start and kept in SQLite.
import { createHash } from 'node:crypto'
import type { NotificationSecretsRepository } from '../../db/notification-secrets-repository.js'
import type { Log } from '../task-store.js'
import { now } from '../task-store.js'
import { generateSecret, parseSecrets } from './signing.js'

export type SigningSecrets = { secrets: string[], source: 'config' | 'generated' }

export function loadSigningSecrets (repo: NotificationSecretsRepository, configured: string | undefined, log: Log): SigningSecrets {
  if (configured) return { secrets: parseSecrets(configured), source: 'config' }
  const kept = repo.latestSecret()
  if (kept) return { secrets: [kept], source: 'generated' }
  const secret = generateSecret()
  repo.insertSecret(secret, now())
  // Secrets never reach the logs: the generation is logged once with a fingerprint; the API shows the secret itself.
  const fingerprint = createHash('sha256').update(secret).digest('hex').slice(0, 12)
  log.warn({ notify_secret_sha256: fingerprint }, 'NOTIFY_SECRET is not set: generated a notification signing secret and kept it in the database; it signs what goes to NOTIFY_URL; an admin (ADMIN_TOKENS) reads it at GET /v1/notifications/secret, or set NOTIFY_SECRET')
  return { secrets: [secret], source: 'generated' }
}
