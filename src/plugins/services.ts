// The domain services that answer requests: submitting and MiniMax's callbacks.
import fp from 'fastify-plugin'
import { CallbackService } from '../services/callback.js'
import { checkNotifyUrl } from '../services/notifications/url-guard.js'
import { SubmitQuota } from '../services/quota.js'
import { SubmitQueue } from '../services/submit-queue.js'
import { SubmitService } from '../services/submit.js'

declare module 'fastify' {
  interface FastifyInstance {
    submitService: SubmitService
    submitQueue: SubmitQueue
    submitQuota: SubmitQuota
    callbackService: CallbackService
  }
}

// Beyond a create's own timeout: the time to start it and to hear its answer on a loaded machine. Only "one create at a
// time" waits for the lease; the interval and the window hold whether or not it ran out.
const CREATE_LEASE_MARGIN_MS = 5000

export default fp(async (app) => {
  const { config } = app
  // The submit queue: paced creates within each provider's rate limit; started when the app is ready (queued tasks of
  // an earlier run resume), stopped (its creates in flight answered) before the database closes.
  const queue = new SubmitQueue({
    store: app.taskStore,
    rpm: { minimax: config.MINIMAX_SUBMIT_RPM, modellix: config.MODELLIX_SUBMIT_RPM },
    windowMs: config.SUBMIT_RPM_WINDOW_MS,
    // A replica killed mid-create holds the slot no longer than the create itself could have taken.
    leaseMs: { minimax: config.MINIMAX_CREATE_TIMEOUT_MS + CREATE_LEASE_MARGIN_MS, modellix: config.PROVIDER_REQUEST_TIMEOUT_MS + CREATE_LEASE_MARGIN_MS },
    limits: app.sharedLimits,
    maxWaitMs: config.QUEUE_MAX_WAIT_MS,
    log: app.log
  })
  const quota = new SubmitQuota(app.taskStore.queries, config.SUBMIT_DAILY_QUOTA, config.CALLER_QUOTAS)
  app.decorate('submitQueue', queue)
  app.decorate('submitQuota', quota)
  app.addHook('onReady', async () => queue.start(app.providers.keys()))
  app.addHook('preClose', async () => queue.stop())
  app.decorate('submitService', new SubmitService({
    queue,
    quota,
    maxQueuedPerCaller: config.MAX_QUEUED_PER_CALLER,
    store: app.taskStore,
    providers: app.providers,
    defaultProvider: app.config.DEFAULT_PROVIDER,
    publicBaseUrl: app.config.PUBLIC_BASE_URL,
    log: app.log,
    // SSRF guard on notify_url (notifications): refused with 400 notify_url_not_allowed before the task exists.
    checkNotifyUrl: (url) => checkNotifyUrl(url, { allowPrivate: app.config.NOTIFY_ALLOW_PRIVATE })
  }))
  app.decorate('callbackService', new CallbackService(app.taskStore, app.log))
}, { name: 'services', dependencies: ['database', 'providers', 'shared-limits'] })
