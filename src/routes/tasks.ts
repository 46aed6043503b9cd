// GET /v1/tasks/:id and GET /v1/tasks: the task, its history, and newest-first pages.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import { ListQuery, TaskDetail, TaskPage, TaskParams } from '../schemas/tasks.js'
import { taskDetail, taskSummary } from '../services/task-view.js'
import { callerKey } from './rate-limit-keys.js'

export type TasksRouteOptions = { rateLimit: number }

// A cursor is the position of the last task of the previous page; opaque so that it can change.
const encodeCursor = (seq: number): string => Buffer.from(`seq:${seq}`).toString('base64url')
function decodeCursor (cursor: string): number {
  const match = /^seq:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString())
  if (!match) throw errors.invalidCursor()
  return Number(match[1])
}

const tasksRoutes: FastifyPluginAsyncTypebox<TasksRouteOptions> = async (app, options) => {
  const routeConfig = { rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } }
  const repo = app.taskStore.repo

  app.get('/v1/tasks/:id', {
    onRequest: app.authenticate,
    config: routeConfig,
    schema: {
      summary: 'One task with its full history',
      params: TaskParams,
      response: { 200: TaskDetail, ...errorResponses(400, 401, 404, 429, 500) }
    }
  }, async (request) => {
    const task = app.taskStore.find(request.params.id)
    if (!task) throw errors.notFound(`task ${request.params.id}`)
    return taskDetail(task, repo.eventsOf(task.seq))
  })

  app.get('/v1/tasks', {
    onRequest: app.authenticate,
    config: routeConfig,
    schema: {
      summary: 'Tasks, newest first',
      querystring: ListQuery,
      response: { 200: TaskPage, ...errorResponses(400, 401, 429, 500) }
    }
  }, async (request) => {
    const { status, limit, cursor } = request.query
    const rows = repo.list({ status, limit: limit + 1, beforeSeq: cursor === undefined ? undefined : decodeCursor(cursor) })
    const page = rows.slice(0, limit)
    return { items: page.map(taskSummary), next_cursor: rows.length > limit ? encodeCursor(page.at(-1)!.seq) : null }
  })
}

export default tasksRoutes
