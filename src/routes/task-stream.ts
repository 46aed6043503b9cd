// GET /v1/tasks/:id/events: server-sent events, one per status change, until the task is finished.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { TaskRow } from '../db/tasks-repository.js'
import { errors } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import { TaskParams } from '../schemas/tasks.js'
import { isTerminal, TASK_STATUSES, type TaskStatus } from '../services/task-state.js'
import { taskSummary } from '../services/task-view.js'
import { callerKey } from './rate-limit-keys.js'
import { openEventStream } from './event-stream.js'

export type TaskStreamRouteOptions = { rateLimit: number, keepAliveMs: number }

// Statuses only move forward, so a status names a point in the stream: it is the event id, and Last-Event-ID resumes.
// success ranks above failed: a failure this service decided itself may still become a success (never the reverse).
// A rate-limited create sends a task back from submitting to queued: that step back is not streamed again.
const RANK: Record<TaskStatus, number> = { queued: 0, submitting: 1, processing: 2, failed: 3, success: 4 }

/** The stream ends on a final status; a failure of our own (provisional) may still turn into the provider's verdict. */
const isFinal = (row: TaskRow): boolean => isTerminal(row.status) && row.error_provisional !== 1

const StreamHeaders = Type.Object({
  // Only ids this stream hands out: anything else is a 400, not silently a fresh start.
  'last-event-id': Type.Optional(Type.Enum([...TASK_STATUSES], { description: 'The id of the last event seen (a status): only later statuses are sent' }))
})

const taskStreamRoute: FastifyPluginAsyncTypebox<TaskStreamRouteOptions> = async (app, options) => {
  // The event of a status: the task as anyone who may see it reads it, so the streams one change reaches share it.
  const statusEvent = async (row: TaskRow): Promise<Buffer> =>
    Buffer.from(`id: ${row.status}\nevent: status\ndata: ${JSON.stringify(taskSummary(row, app.downloadLinks.forLookup, await app.submitQueue.positionOf(row)))}\n\n`)
  const sharedEvent = async (change: TaskRow): Promise<Buffer> => await app.taskWatch.shared(change, statusEvent)

  app.get('/v1/tasks/:id/events', {
    onRequest: app.authenticate,
    config: { rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'Server-sent events: the task\'s status changes',
      description: 'First the current status, then one `status` event per change (id = the status, data = the task without its history), ' +
        'a keep-alive comment every SSE_KEEPALIVE_MS, and the stream ends after success or a final failed (a failure this service decided itself, ' +
        'error.provisional, keeps it open for the provider\'s verdict). With Last-Event-ID only later statuses ' +
        'are sent; a finished task whose final status was already seen answers 204 (so EventSource stops reconnecting).',
      params: TaskParams,
      headers: StreamHeaders,
      response: {
        200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: Type.String({ description: 'id: <status>, event: status, data: <task JSON>' }) } } },
        204: Type.Null({ description: 'The task is finished and the caller has seen its final status' }),
        ...errorResponses(400, 401, 404, 429, 500)
      }
    }
  }, async (request, reply) => {
    const task = await app.taskStore.findFor(request, request.params.id)
    if (!task) throw errors.notFound(`task ${request.params.id}`)
    const lastEventId = request.headers['last-event-id']
    let seen = lastEventId === undefined ? -1 : RANK[lastEventId]
    if (isFinal(task) && seen >= RANK[task.status]) return reply.code(204).send(null)

    // Capped per caller and in total, like long-polls; the slot is held until the stream ends.
    const release = app.taskWatch.admit(callerKey(request))
    const res = openEventStream(request, reply)

    let ended = false
    const end = (last?: Buffer) => {
      if (ended) return
      ended = true
      release()
      clearInterval(keepAlive)
      unwatch()
      res.end(last)
    }
    // A provisional failure sent, then replaced by the provider's own: news, though the status word is the same.
    let sentProvisional = false
    let finished = false
    // Frames go out in the order of the changes, each once it is made.
    let writing: Promise<void> = Promise.resolve()
    const send = (row: TaskRow, eventOf: (row: TaskRow) => Promise<Buffer>) => {
      if (finished) return
      let event: Promise<Buffer> | undefined
      if (RANK[row.status] > seen || (sentProvisional && row.status === 'failed' && isFinal(row))) {
        seen = RANK[row.status]
        sentProvisional = !isFinal(row)
        event = eventOf(row)
      }
      const last = isFinal(row)
      finished = last
      writing = writing.then(async () => {
        const bytes = event && await event
        // The last event goes out with the end of the stream: one write.
        if (last) end(bytes)
        else if (bytes && !ended) res.write(bytes)
      }).catch((err: unknown) => {
        request.log.error({ err }, 'could not make an event of a status change; the stream ends')
        end()
      })
    }
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), options.keepAliveMs)
    // Watched before the task is read again for the first event: a change committed after the lookup is either in that
    // read or announced to the watch (and sent once: a status is sent only when it ranks above the last one sent).
    let unwatch = () => {}
    unwatch = app.taskWatch.watch(task.seq, { onChange: (row) => send(row, sharedEvent), onClose: () => end() })
    res.on('close', () => end())
    send(await app.taskStore.queries.bySeq(task.seq) ?? task, statusEvent)
  })
}

export default taskStreamRoute
