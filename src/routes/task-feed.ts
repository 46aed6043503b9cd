// GET /v1/events: server-sent events, one per status change of any task the caller may see (the dashboard's live list).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { TaskRow } from '../db/tasks-repository.js'
import { errorResponses } from '../schemas/common.js'
import { taskSummary } from '../services/task-view.js'
import { callerKey } from './rate-limit-keys.js'
import { openEventStream } from './event-stream.js'
import { canSee } from '../services/visibility.js'

export type TaskFeedRouteOptions = { rateLimit: number, keepAliveMs: number }

const taskFeedRoute: FastifyPluginAsyncTypebox<TaskFeedRouteOptions> = async (app, options) => {
  // The same for every stream that may see the task: made once per change, whoever is watching.
  const statusEvent = async (row: TaskRow): Promise<Buffer> =>
    Buffer.from(`event: status\ndata: ${JSON.stringify(taskSummary(row, app.downloadLinks.forLookup, await app.submitQueue.positionOf(row)))}\n\n`)

  app.get('/v1/events', {
    onRequest: app.authenticate,
    config: { rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'Server-sent events: status changes of every task',
      description: 'One `status` event per status change of any task you may see (data = the task without its history), and a keep-alive ' +
        'comment every SSE_KEEPALIVE_MS; the stream never ends by itself. It carries changes from the moment it opens: read ' +
        'GET /v1/tasks first, then apply the events. For one task, GET /v1/tasks/:id/events.',
      tags: ['tasks'],
      response: {
        200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: Type.String({ description: 'event: status, data: <task JSON>' }) } } },
        ...errorResponses(401, 429, 500)
      }
    }
  }, async (request, reply) => {
    // Capped per caller and in total like every long-poll and stream; the slot is held until the stream ends.
    const release = app.taskWatch.admit(callerKey(request))
    const res = openEventStream(request, reply)
    let ended = false
    const end = () => {
      if (ended) return
      ended = true
      release()
      clearInterval(keepAlive)
      unwatch()
      res.end()
    }
    // Frames go out in the order of the changes, each once it is made.
    let writing: Promise<void> = Promise.resolve()
    const send = (row: TaskRow) => {
      if (ended || !canSee(request, row)) return // another caller's task: not even its existence
      const frame = app.taskWatch.shared(row, statusEvent)
      writing = writing.then(async () => { const bytes = await frame; if (!ended) res.write(bytes) }).catch((err: unknown) => {
        request.log.error({ err }, 'could not make an event of a status change; the stream ends')
        end()
      })
    }
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), options.keepAliveMs)
    const unwatch = app.taskWatch.watchAll({ onChange: send, onClose: end })
    res.on('close', end)
  })
}

export default taskFeedRoute
