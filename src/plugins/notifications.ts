// Signed notifications: the outbox writer on every status change, the delivery worker, the signing secrets.
import fp from 'fastify-plugin'
import { DeliveriesRepository } from '../db/deliveries-repository.js'
import { PostgresDeliveriesStorage } from '../db/postgres/deliveries-storage.js'
import { SqliteDeliveriesStorage } from '../db/sqlite-deliveries-storage.js'
import type { DeliveriesStorage } from '../services/notifications/deliveries-storage.js'
import { NotificationOutbox } from '../services/notifications/outbox.js'
import { parseSchedule } from '../services/notifications/schedule.js'
import { loadSigningSecrets, type SigningSecrets } from '../services/notifications/secrets.js'
import { NotificationSender } from '../services/notifications/sender.js'
import { CallerSecrets, signerFor } from '../services/notifications/caller-secrets.js'
import { DeliveryWorker } from '../services/notifications/worker.js'

declare module 'fastify' {
  interface FastifyInstance {
    notifications: {
      outbox: NotificationOutbox
      worker: DeliveryWorker
      /** The operator's: NOTIFY_SECRET, else the generated one. They sign NOTIFY_URL's messages (NOTIFY_SECRET: every message). */
      secrets: SigningSecrets
      /** Each caller's own, for its tasks' notify_url. */
      callerSecrets: CallerSecrets
    }
  }
}

// Half of the shutdown grace for attempts under way; the rest is for requests and closing the database.
const WORKER_SHARE_OF_GRACE = 0.5
// Lets consumers tell our messages apart in their access logs.
const USER_AGENT = 's2v-callback-notifier/1'
// A claimed delivery is this replica's for the attempt's timeout plus this much: the URL's DNS check, the signing
// secrets' look-up and the outcome's save, each milliseconds on a healthy replica, seconds on a starved one. Past it,
// another replica may send the message again (a killed replica's deliveries go out after no longer than this).
const LEASE_MARGIN_MS = 30_000

export default fp(async (app) => {
  const config = app.config
  const allowPrivate = config.NOTIFY_ALLOW_PRIVATE
  const scheduleMs = parseSchedule(config.NOTIFY_RETRY_SCHEDULE)
  const engine = app.engine
  const storage: DeliveriesStorage = engine.kind === 'sqlite'
    ? new SqliteDeliveriesStorage(new DeliveriesRepository(engine.db))
    : new PostgresDeliveriesStorage(engine.pool)
  const secrets = await loadSigningSecrets(app.secretsStorage, config.NOTIFY_SECRET, app.log)
  const sender = new NotificationSender({ timeoutMs: config.NOTIFY_TIMEOUT_MS, allowPrivate, userAgent: USER_AGENT })
  const callerSecrets = new CallerSecrets(app.secretsStorage, app.log)
  const tasks = app.taskStore.queries
  const signer = signerFor({
    callers: callerSecrets,
    operator: secrets.secrets,
    everywhere: secrets.source === 'config' ? secrets.secrets : [],
    globalUrl: config.NOTIFY_URL,
    notifyUrlOf: async (taskSeq) => (await tasks.bySeq(taskSeq))?.notify_url
  })
  const worker = new DeliveryWorker({ storage, sender, signerFor: signer, scheduleMs, allowPrivate, leaseMs: config.NOTIFY_TIMEOUT_MS + LEASE_MARGIN_MS, log: app.log })
  const outbox = new NotificationOutbox(storage, { globalUrl: config.NOTIFY_URL, onPending: () => worker.wake(), signVideoLink: app.downloadLinks.forNotification })
  if (allowPrivate) app.log.warn('NOTIFY_ALLOW_PRIVATE is true: notifications may go to loopback and private addresses')
  // The outbox writes its rows with each status change, and the worker wakes after the commit (plugins/task-effects.ts).
  app.decorate('notifications', { outbox, worker, secrets, callerSecrets })

  // Deliveries left pending by a previous run (or a crash) go out as soon as the app is ready.
  app.addHook('onReady', async () => { await worker.start() })
  let stopping: Promise<void> | undefined
  app.addHook('preClose', async () => { stopping = worker.stop(config.SHUTDOWN_GRACE_MS * WORKER_SHARE_OF_GRACE) })
  // onClose hooks run in reverse order, so the database (registered earlier) is still open here.
  app.addHook('onClose', async () => {
    await (stopping ?? worker.stop(0))
    sender.close()
  })
}, { name: 'notifications', dependencies: ['database', 'services', 'download-links', 'secrets'] })
