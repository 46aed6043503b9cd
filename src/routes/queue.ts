// The submit queue's routes: POST /v1/tasks/:id/cancel (a queued task, never sent) and GET /v1/quota (the caller's daily quota).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../errors.js'
import { errorResponses, Nullable } from '../schemas/common.js'
import { TaskDetail, TaskParams } from '../schemas/tasks.js'
import { taskDetail } from '../services/task-view.js'
import { callerKey } from './rate-limit-keys.js'

export type QueueRoutesOptions = { rateLimit: number }

const QuotaAnswer = Type.Object({
  caller: Type.String({ description: 'Who the quota counts (the caller name, or the token fingerprint)' }),
  limit: Nullable(Type.Integer({ description: 'Submits allowed per UTC day (CALLER_QUOTAS, else SUBMIT_DAILY_QUOTA); null: no quota' })),
  used: Type.Integer({ description: 'Submits counted today (cancelled queued tasks give theirs back)' }),
  remaining: Nullable(Type.Integer({ description: 'Submits left today; null: no quota' })),
  reset_at: Type.String({ format: 'date-time', description: 'When the count starts again (the next UTC midnight)' }),
  queued: Type.Integer({ description: 'The caller\'s tasks waiting in the submit queue now' }),
  max_queued: Type.Integer({ description: 'MAX_QUEUED_PER_CALLER: beyond it a submit answers 429 queue_full' })
}, {
  description: 'The caller\'s daily submit quota and queue use',
  examples: [{ caller: 'team-a', limit: 100, used: 42, remaining: 58, reset_at: '2026-12-02T00:00:00.000Z', queued: 3, max_queued: 1000 }]
})

const queueRoutes: FastifyPluginAsyncTypebox<QueueRoutesOptions> = async (app, options) => {
  const routeConfig = { rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } }

  app.post('/v1/tasks/:id/cancel', {
    onRequest: app.authenticate,
    config: routeConfig,
    schema: {
      summary: 'Cancel a queued task',
      description: 'A task still queued (never sent to the provider) becomes failed with error code cancelled, and its place in the daily ' +
        'quota is given back. A task already sent answers 409 not_cancellable: the provider has it, and it costs what it costs.',
      tags: ['tasks'],
      params: TaskParams,
      response: { 200: TaskDetail, ...errorResponses(400, 401, 404, 409, 429, 500) }
    }
  }, async (request) => {
    const task = await app.taskStore.findFor(request, request.params.id)
    if (!task) throw errors.notFound(`task ${request.params.id}`)
    const cancelled = await app.taskStore.moveInQueue(task.seq, 'cancel', {
      error: { code: 'cancelled', message: 'cancelled by the caller before it was sent' },
      detail: { by: request.caller }
    })
    if (!cancelled) throw errors.notCancellable(task.id, (await app.taskStore.queries.bySeq(task.seq))?.status ?? task.status)
    request.log.info({ id: task.id, caller: request.caller }, 'queued task cancelled')
    return await taskDetail(cancelled, app.taskStore.queries, app.downloadLinks.forLookup)
  })

  app.get('/v1/quota', {
    onRequest: app.authenticate,
    config: routeConfig,
    schema: {
      summary: 'Your daily submit quota',
      description: 'The calling token\'s daily quota (SUBMIT_DAILY_QUOTA, CALLER_QUOTAS), how much of it is used, when it resets, and its queue use.',
      tags: ['tasks'],
      response: { 200: QuotaAnswer, ...errorResponses(401, 429, 500) }
    }
  }, async (request) => ({
    ...await app.submitQuota.status(request.caller),
    queued: await app.taskStore.queries.queuedOfCaller(request.caller),
    max_queued: app.config.MAX_QUEUED_PER_CALLER
  }))
}

export default queueRoutes
