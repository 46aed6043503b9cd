// POST /v1/tasks/:id/refresh (ask the provider now) and GET /v1/tasks/:id/video (the video: our copy, or a fresh link).
import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import { TaskDetail, TaskParams } from '../schemas/tasks.js'
import { taskDetail } from '../services/task-view.js'
import { callerKey } from './rate-limit-keys.js'
import { sendVideo } from './video-reply.js'

export type TaskActionsOptions = { refreshRateLimit: number, readRateLimit: number }

const taskActions: FastifyPluginAsyncTypebox<TaskActionsOptions> = async (app, options) => {
  const find = async (request: FastifyRequest, id: string) => {
    const task = await app.taskStore.findFor(request, id)
    if (!task) throw errors.notFound(`task ${id}`)
    return task
  }

  app.post('/v1/tasks/:id/refresh', {
    onRequest: app.authenticate,
    config: { rateLimit: { max: options.refreshRateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'Ask the provider about the task now',
      description: 'One poll now, within the provider call budget (429 poll_budget_exhausted when it is spent). A finished task with a fresh video link is answered without a call. 503 database_busy when the answer cannot be written.',
      tags: ['tasks'],
      params: TaskParams,
      response: { 200: TaskDetail, ...errorResponses(400, 401, 404, 429, 500, 503) }
    }
  }, async (request) => {
    const task = await app.reconciler.pollNow(await find(request, request.params.id))
    return await taskDetail(task, app.taskStore.queries, app.downloadLinks.forLookup, await app.submitQueue.positionOf(task))
  })

  app.get('/v1/tasks/:id/video', {
    onRequest: app.authenticate,
    config: { rateLimit: { max: options.readRateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'The finished video',
      description: 'Our archived copy (VIDEO_DIR) as video/mp4 with Range support, else a 302 to a fresh provider download URL (fetched now when none is known). 409 until the task succeeded.',
      tags: ['tasks'],
      params: TaskParams,
      response: { ...errorResponses(400, 401, 404, 409, 429, 500, 502) }
    }
  }, async (request, reply) => sendVideo(app, await find(request, request.params.id), reply))
}

export default taskActions
