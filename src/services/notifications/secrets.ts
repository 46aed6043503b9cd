// Which secrets sign notifications: NOTIFY_SECRET when configured, else one generated on first start and kept in SQLite.
import type { DeliveriesRepository } from '../../db/deliveries-repository.js'
import type { Log } from '../task-store.js'
import { now } from '../task-store.js'
import { generateSecret, parseSecrets } from './signing.js'

export type SigningSecrets = { secrets: string[], source: 'config' | 'generated' }

export function loadSigningSecrets (repo: DeliveriesRepository, configured: string | undefined, log: Log): SigningSecrets {
  if (configured) return { secrets: parseSecrets(configured), source: 'config' }
  const kept = repo.latestSecret()
  if (kept) return { secrets: [kept], source: 'generated' }
  const secret = generateSecret()
  repo.insertSecret(secret, now())
  // Logged once, at generation, so whoever deploys can hand it to consumers; afterwards only the API shows it.
  log.warn({ notify_secret: secret }, 'NOTIFY_SECRET is not set: generated a notification signing secret and kept it in the database; give it to your consumers, or read it at GET /v1/notifications/secret')
  return { secrets: [secret], source: 'generated' }
}
