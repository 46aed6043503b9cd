// Signed notifications: the outbox writer on every status change, the delivery worker, the signing secrets.
import fp from 'fastify-plugin'
import { sqliteOf } from './database.js'
import { DeliveriesRepository } from '../db/deliveries-repository.js'
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

export default fp(async (app) => {
  const config = app.config
  const allowPrivate = config.NOTIFY_ALLOW_PRIVATE
  const scheduleMs = parseSchedule(config.NOTIFY_RETRY_SCHEDULE)
  const repo = new DeliveriesRepository(sqliteOf(app.engine, 'notifications'))
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
  const worker = new DeliveryWorker({ repo, sender, signerFor: signer, scheduleMs, allowPrivate, log: app.log })
  const outbox = new NotificationOutbox(repo, { globalUrl: config.NOTIFY_URL, onPending: () => worker.wake(), signVideoLink: app.downloadLinks.forNotification })
  if (allowPrivate) app.log.warn('NOTIFY_ALLOW_PRIVATE is true: notifications may go to loopback and private addresses')
  // The outbox writes its rows with each status change, and the worker wakes after the commit (plugins/task-effects.ts).
  app.decorate('notifications', { outbox, worker, secrets, callerSecrets })

  // Deliveries left pending by a previous run (or a crash) go out as soon as the app is ready.
  app.addHook('onReady', async () => { worker.start() })
  let stopping: Promise<void> | undefined
  app.addHook('preClose', async () => { stopping = worker.stop(config.SHUTDOWN_GRACE_MS * WORKER_SHARE_OF_GRACE) })
  // onClose hooks run in reverse order, so the database (registered earlier) is still open here.
  app.addHook('onClose', async () => {
    await (stopping ?? worker.stop(0))
    sender.close()
  })
}, { name: 'notifications', dependencies: ['database', 'services', 'download-links', 'secrets'] })
