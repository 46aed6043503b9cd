// GET /v1/tasks/:id and GET /v1/tasks: the task, its history, and newest-first pages.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { errors } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import type { TaskLookup, TaskRow } from '../db/tasks-repository.js'
import { HistoryPage, HistoryQuery, ListQuery, LOOKUP_EVENTS, TaskDetail, TaskPage, TaskParams, TaskWaitQuery } from '../schemas/tasks.js'
import { taskDetail, taskDetailOf, taskEvent, taskSummary } from '../services/task-view.js'
import { pageCursor } from './cursor.js'
import { callerKey } from './rate-limit-keys.js'

export type TasksRouteOptions = { rateLimit: number }

const taskCursor = pageCursor('seq')
const eventCursor = pageCursor('event')

const tasksRoutes: FastifyPluginAsyncTypebox<TasksRouteOptions> = async (app, options) => {
  const routeConfig = { rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } }
  const repo = app.taskStore.queries

  const lookup = async (found: TaskRow): Promise<TaskDetail> => {
    const task = await app.reconciler.freshVideoLink(found)
    return await taskDetail(task, repo, app.downloadLinks.forLookup, await app.submitQueue.positionOf(task))
  }
  // A plain lookup: the task and its events came in one read (TaskStore.lookupFor). A fresh video link, when one was
  // fetched, rewrote the task: then it and its events are read again, as for a long-poll.
  const lookupNow = async ({ task, events }: TaskLookup): Promise<TaskDetail> => {
    const fresh = await app.reconciler.freshVideoLink(task)
    const queue = await app.submitQueue.positionOf(fresh)
    return fresh === task
      ? await taskDetailOf(task, events, repo, app.downloadLinks.forLookup, queue)
      : await taskDetail(fresh, repo, app.downloadLinks.forLookup, queue)
  }
  // A long-poll's answer depends on the task alone (findFor has checked that the caller may see it), so the polls one
  // push releases share it: read, signed (one expiry, the same second) and serialised once, by this route's 200 schema.
  // As bytes: each reply then neither measures nor encodes it again.
  let serializeDetail: ((detail: TaskDetail) => string) | undefined
  const waitAnswer = async (found: TaskRow): Promise<Buffer> => Buffer.from(serializeDetail!(await lookup(found)))

  app.get('/v1/tasks/:id', {
    onRequest: app.authenticate,
    config: routeConfig,
    schema: {
      summary: 'One task with its latest events',
      description: 'By our id or MiniMax\'s task_id: the task\'s state, its latest 100 events (submit, push, poll) with what each did, ' +
        'and events_total; GET /v1/tasks/:id/history pages through the whole history.',
      params: TaskParams,
      querystring: TaskWaitQuery,
      response: { 200: TaskDetail, ...errorResponses(400, 401, 404, 429, 500) }
    }
  }, async (request, reply) => {
    if (!request.query.wait) {
      const read = await app.taskStore.lookupFor(request, request.params.id, LOOKUP_EVENTS)
      if (!read) throw errors.notFound(`task ${request.params.id}`)
      return await lookupNow(read)
    }
    const found = await app.taskStore.findFor(request, request.params.id)
    if (!found) throw errors.notFound(`task ${request.params.id}`)
    // Long-poll (?wait=N&status=S): answers once the status differs from S, after N s, or when the client leaves.
    // Capped per caller and in total (MAX_WAITERS_PER_CALLER, MAX_WAITERS): beyond, 429 too_many_waiters.
    // The same function for every request on this route (Fastify compiles one per route and status).
    serializeDetail ??= reply.getSerializationFunction('200') as (detail: TaskDetail) => string
    // Sent from the release itself (one pass over every poll the change releases); this handler then ends, the reply sent.
    // Already serialised, so untyped: bytes are sent as they are, with the JSON content type set here.
    await app.taskWatch.longPoll(found, { wait: request.query.wait, status: request.query.status, caller: callerKey(request) }, reply.raw, waitAnswer,
      (json) => { (reply as FastifyReply).type('application/json; charset=utf-8').send(json) })
    return reply
  })

  app.get('/v1/tasks/:id/history', {
    onRequest: app.authenticate,
    config: routeConfig,
    schema: {
      summary: 'A task\'s whole history, oldest first',
      description: 'Pages of events (limit 1–1000, default 100); pass next_cursor back as cursor for the next page.',
      params: TaskParams,
      querystring: HistoryQuery,
      response: { 200: HistoryPage, ...errorResponses(400, 401, 404, 429, 500) }
    }
  }, async (request) => {
    const task = await app.taskStore.findFor(request, request.params.id)
    if (!task) throw errors.notFound(`task ${request.params.id}`)
    const { limit, cursor } = request.query
    const rows = await repo.eventsAfter(task.seq, cursor === undefined ? 0 : eventCursor.decode(cursor), limit + 1)
    const page = rows.slice(0, limit)
    return { items: page.map(taskEvent), next_cursor: rows.length > limit ? eventCursor.encode(page.at(-1)!.seq) : null }
  })

  app.get('/v1/tasks', {
    onRequest: app.authenticate,
    config: routeConfig,
    schema: {
      summary: 'Tasks, newest first',
      description: 'Pages of the caller\'s tasks (an admin\'s: everyone\'s) without their history; filter by status, provider and (an admin) caller, ' +
        'search by our id (or its start), task_id or a metadata value (q); pass next_cursor back as cursor for the next page, with the same filters.',
      querystring: ListQuery,
      response: { 200: TaskPage, ...errorResponses(400, 401, 429, 500) }
    }
  }, async (request) => {
    const { status, provider, caller, q, limit, cursor } = request.query
    const rows = await app.taskStore.listFor(request, { status, provider, caller, search: q, limit: limit + 1, beforeSeq: cursor === undefined ? undefined : taskCursor.decode(cursor) })
    const page = rows.slice(0, limit)
    const items = await Promise.all(page.map(async (row) => taskSummary(row, app.downloadLinks.forLookup, await app.submitQueue.positionOf(row))))
    return { items, next_cursor: rows.length > limit ? taskCursor.encode(page.at(-1)!.seq) : null }
  })
}

export default tasksRoutes
