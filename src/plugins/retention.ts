// Retention (RETENTION_DAYS > 0): purges old finished tasks in small batches while the app runs.
import fp from 'fastify-plugin'
import { RetentionJob } from '../services/retention.js'

// Small enough that one delete transaction holds the write lock for milliseconds, never blocking callbacks for long.
const BATCH_SIZE = 500
// Nothing expires faster than in days; checking hourly keeps the backlog at one hour of tasks.
const INTERVAL_MS = 3600_000

export default fp(async (app) => {
  if (app.config.RETENTION_DAYS === 0) return
  const job = new RetentionJob({ store: app.taskStore, retentionDays: app.config.RETENTION_DAYS, batchSize: BATCH_SIZE, log: app.log })
  app.addHook('onReady', async () => job.start(INTERVAL_MS))
  app.addHook('preClose', async () => job.stop())
}, { name: 'retention', dependencies: ['database'] })
