// The reconciler runs while the app is up: started when the app is ready, stopped (its pass finished) before the database closes.
import fp from 'fastify-plugin'
import { CallBudget } from '../services/call-budget.js'
import { Reconciler } from '../services/reconciler.js'

declare module 'fastify' {
  interface FastifyInstance {
    reconciler: Reconciler
  }
}

// A create can legitimately take MINIMAX_CREATE_TIMEOUT_MS: never give up on a submit before it could have answered.
const SUBMIT_GRACE_FACTOR = 2

export default fp(async (app) => {
  const { config } = app
  // A task may not be given up before its create call itself could have timed out: a lower value is raised, and said so.
  const submittingFloorMs = config.MINIMAX_CREATE_TIMEOUT_MS * SUBMIT_GRACE_FACTOR
  const submittingTimeoutMs = Math.max(config.SUBMITTING_TIMEOUT_MS, submittingFloorMs)
  if (submittingTimeoutMs > config.SUBMITTING_TIMEOUT_MS) {
    app.log.warn({ SUBMITTING_TIMEOUT_MS: config.SUBMITTING_TIMEOUT_MS, used_ms: submittingTimeoutMs },
      `SUBMITTING_TIMEOUT_MS is below ${SUBMIT_GRACE_FACTOR} × MINIMAX_CREATE_TIMEOUT_MS: using ${submittingTimeoutMs} ms instead`)
  }
  const reconciler = new Reconciler({
    store: app.taskStore,
    providers: app.providers,
    policies: {
      minimax: {
        afterNewsMs: config.RECONCILE_AFTER_MS,
        backoffMs: config.RECONCILE_BACKOFF_MS,
        backoffMaxMs: config.RECONCILE_BACKOFF_MAX_MS,
        budget: new CallBudget(config.MINIMAX_POLL_BUDGET, { limits: app.sharedLimits, key: 'poll-budget:minimax' })
      },
      modellix: {
        afterNewsMs: config.MODELLIX_POLL_MS,
        backoffMs: config.MODELLIX_POLL_MS,
        backoffMaxMs: config.MODELLIX_POLL_MAX_MS,
        budget: new CallBudget(config.MODELLIX_POLL_BUDGET, { limits: app.sharedLimits, key: 'poll-budget:modellix' })
      }
    },
    tickMs: config.RECONCILE_TICK_MS,
    submittingTimeoutMs,
    deadlineMs: config.TASK_DEADLINE_MS,
    lateResultWindowMs: config.LATE_RESULT_WINDOW_MS,
    latePollMs: config.LATE_RESULT_POLL_MS,
    archive: config.VIDEO_DIR !== undefined,
    providerRequestTimeoutMs: config.PROVIDER_REQUEST_TIMEOUT_MS,
    log: app.log
  })
  app.decorate('reconciler', reconciler)
  app.addHook('onReady', async () => reconciler.start())
  app.addHook('preClose', async () => reconciler.stop())
}, { name: 'reconciler', dependencies: ['database', 'providers', 'shared-limits'] })
