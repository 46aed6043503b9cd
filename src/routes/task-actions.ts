// POST /v1/tasks/:id/refresh (ask the provider now) and GET /v1/tasks/:id/video (the video: our copy, or a fresh link).
import { existsSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AppError, errors } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import { TaskDetail, TaskParams } from '../schemas/tasks.js'
import { taskDetail } from '../services/task-view.js'
import { callerKey } from './rate-limit-keys.js'

export type TaskActionsOptions = { refreshRateLimit: number, readRateLimit: number }

const taskActions: FastifyPluginAsyncTypebox<TaskActionsOptions> = async (app, options) => {
  const find = (request: FastifyRequest, id: string) => {
    const task = app.taskStore.findFor(request, id)
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
    const task = await app.reconciler.pollNow(find(request, request.params.id))
    return taskDetail(task, app.taskStore.repo)
  })

  app.get('/v1/tasks/:id/video', {
    onRequest: app.authenticate,
    config: { rateLimit: { max: options.readRateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'The finished video',
      description: 'Our archived copy (VIDEO_DIR) as video/mp4 with Range support, else a 302 to a fresh provider download URL. 409 until the task succeeded and its link is known.',
      tags: ['tasks'],
      params: TaskParams,
      response: { ...errorResponses(400, 401, 404, 409, 429, 500, 502) }
    }
  }, async (request, reply) => {
    let task = find(request, request.params.id)
    if (task.archive_state === 'stored' && task.archive_path && app.hasReplyDecorator('sendFile') && existsSync(task.archive_path)) {
      // A caller's video, not a public asset: browsers may keep it, shared caches (proxies, CDNs) must not.
      return reply.type('video/mp4').header('cache-control', 'private').sendFile(basename(task.archive_path), dirname(task.archive_path), { cacheControl: false })
    }
    if (task.status !== 'success' || !task.video_url) {
      throw new AppError(409, 'video_not_ready', `the task is ${task.status}; its video is not available yet`, { id: task.id, status: task.status })
    }
    task = await app.reconciler.freshVideoLink(task)
    if (Date.parse(task.video_expires_at!) <= Date.now()) {
      throw new AppError(502, 'video_link_unavailable', 'the provider\'s download link expired and a fresh one could not be fetched; try again shortly', { id: task.id })
    }
    // The Location is a signed, expiring link: nobody should keep this answer.
    return reply.header('cache-control', 'private, no-store').redirect(task.video_url!, 302)
  })
}

export default taskActions
