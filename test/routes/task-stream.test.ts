// GET /v1/tasks/:id/events over real sockets: statuses in order, keep-alives, the end, Last-Event-ID, shutdown.
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { build, freePort, seedTask, taskId } from '../helper.js'
import { waitUntil } from '../fixtures/webhook-consumer.js'
import type { App } from '../../src/app.js'

type SseEvent = { id?: string, event?: string, data?: string, comment?: string, retry?: string }

/** Opens the stream and parses what arrives; `ended` resolves when the server closes it. */
async function openStream (url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController()
  const response = await fetch(url, { headers, signal: controller.signal })
  const events: SseEvent[] = []
  let buffer = ''
  const ended = (async () => {
    if (!response.body) return
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true })
        let split
        while ((split = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, split)
          buffer = buffer.slice(split + 2)
          const event: SseEvent = {}
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) event.comment = line.slice(1).trim()
            else {
              const colon = line.indexOf(':')
              event[line.slice(0, colon) as 'id' | 'event' | 'data' | 'retry'] = line.slice(colon + 1).trim()
            }
          }
          events.push(event)
        }
      }
    } catch {}
  })()
  return { response, events, ended, close: () => controller.abort() }
}

async function listening (t: { teardown: (fn: () => unknown) => void }, env: Record<string, string> = {}) {
  const app = await build(t, env)
  const port = await freePort()
  await app.listen({ port, host: '127.0.0.1' })
  return { app, base: `http://127.0.0.1:${port}` }
}

const push = (app: App, token: string, tid: string, status: string) =>
  app.inject({ method: 'POST', url: `/get_callback/${token}`, payload: { task_id: tid, status, file_id: '42' } })
const statusEvents = (events: SseEvent[]) => events.filter((event) => event.event === 'status')

t.test('an SSE client sees processing, then success, then the stream closes', async (t) => {
  const { app, base } = await listening(t)
  const tid = taskId()
  const { id, token } = await seedTask(app.taskStore, { task_id: tid })
  const stream = await openStream(`${base}/v1/tasks/${id}/events`)
  t.equal(stream.response.status, 200)
  t.match(stream.response.headers.get('content-type'), /^text\/event-stream/)
  t.equal(stream.response.headers.get('cache-control'), 'no-cache, no-transform')
  t.ok(stream.response.headers.get('x-request-id'))
  await waitUntil('the current status arrived', () => statusEvents(stream.events).length === 1)
  await push(app, token, tid, 'processing')
  await push(app, token, tid, 'Success')
  await stream.ended
  const events = statusEvents(stream.events)
  t.same(events.map((event) => event.id), ['processing', 'success'], 'one event per status change: the duplicate processing sent nothing')
  t.match(JSON.parse(events[1]!.data!), { id, task_id: tid, status: 'success', file_id: '42' })
  t.notOk('events' in JSON.parse(events[1]!.data!), 'the task without its history')
  t.equal(stream.events[0]!.retry, '3000', 'tells EventSource how soon to reconnect')
  t.equal(app.taskWatch.size, 0, 'the stream let go of its watch')
})

t.test('keep-alive comments flow while nothing happens; Last-Event-ID resumes after what was seen', async (t) => {
  const { app, base } = await listening(t, { SSE_KEEPALIVE_MS: '20' })
  const tid = taskId()
  const { id, token } = await seedTask(app.taskStore, { task_id: tid })
  const resumed = await openStream(`${base}/v1/tasks/${tid}/events`, { 'last-event-id': 'processing' })
  await waitUntil('keep-alives', () => resumed.events.filter((event) => event.comment === 'keep-alive').length >= 3, 2000)
  t.equal(statusEvents(resumed.events).length, 0, 'processing was seen already: not sent again')
  await push(app, token, tid, 'failed')
  await resumed.ended
  t.same(statusEvents(resumed.events).map((event) => event.id), ['failed'])

  const finished = await fetch(`${base}/v1/tasks/${id}/events`, { headers: { 'last-event-id': 'failed' } })
  t.equal(finished.status, 204, 'the final status was seen: 204 stops EventSource reconnecting')
  const fresh = await openStream(`${base}/v1/tasks/${id}/events`)
  await fresh.ended
  t.same(statusEvents(fresh.events).map((event) => event.id), ['failed'], 'without Last-Event-ID a finished task sends its status and ends at once')
  for (const bad of ['garbage', 'Success', 'processing,failed', '']) {
    const res = await fetch(`${base}/v1/tasks/${id}/events`, { headers: { 'last-event-id': bad } })
    t.equal(res.status, 400, `Last-Event-ID ${JSON.stringify(bad)} is not one of ours: 400`)
    t.equal(((await res.json()) as { code: string }).code, 'invalid_request')
  }
})

t.test('the streams one change reaches share one event: signed and serialised once, the same bytes for all', async (t) => {
  const { app, base } = await listening(t, { API_TOKENS: 'alice:alice-token', ADMIN_TOKENS: 'ops:ops-token', MAX_WAITERS_PER_CALLER: '200' })
  const tid = taskId()
  const { id, token } = await seedTask(app.taskStore, { task_id: tid, caller: 'alice' })
  const streams = await Promise.all(Array.from({ length: 200 }, (_, i) =>
    openStream(`${base}/v1/tasks/${id}/events`, { authorization: `Bearer ${i % 2 === 0 ? 'alice' : 'ops'}-token` })))
  t.teardown(() => { for (const stream of streams) stream.close() })
  await waitUntil('every stream has the current status', () => streams.every((stream) => statusEvents(stream.events).length === 1))

  const links = app.downloadLinks
  const forLookup = links.forLookup
  let signed = 0
  links.forLookup = (row) => { signed += 1; return forLookup(row) }
  t.teardown(() => { links.forLookup = forLookup })
  await push(app, token, tid, 'success')
  await Promise.all(streams.map((stream) => stream.ended))
  t.equal(signed, 1, 'one signed link for 200 streams')
  const finals = streams.map((stream) => statusEvents(stream.events)[1])
  t.ok(finals.every((event) => event?.id === 'success' && event.data === finals[0]!.data), 'the same success event on every stream')
  t.match(JSON.parse(finals[0]!.data!), { id, status: 'success', video: { download_url: String } })
  t.equal(app.taskWatch.size, 0, 'every stream ended')
})

t.test('errors come as JSON before the stream starts', async (t) => {
  const { app, base } = await listening(t, { API_TOKENS: 'token-1' })
  const { id } = await seedTask(app.taskStore, { task_id: taskId() })
  const unauthorised = await fetch(`${base}/v1/tasks/${id}/events`)
  t.equal(unauthorised.status, 401)
  t.equal(((await unauthorised.json()) as { code: string }).code, 'unauthorized')
  const unknown = await fetch(`${base}/v1/tasks/nope/events`, { headers: { authorization: 'Bearer token-1' } })
  t.equal(unknown.status, 404)
  t.equal(((await unknown.json()) as { code: string }).code, 'not_found')
  const tooLong = await fetch(`${base}/v1/tasks/${id}/events`, { headers: { authorization: 'Bearer token-1', 'last-event-id': 'x'.repeat(100) } })
  t.equal(tooLong.status, 400)
})

t.test('a client that leaves releases its watch; closing the app ends the streams at once', async (t) => {
  const { app, base } = await listening(t)
  const { id } = await seedTask(app.taskStore, { task_id: taskId() })
  const leaving = await openStream(`${base}/v1/tasks/${id}/events`)
  await waitUntil('watching', () => app.taskWatch.size === 1)
  leaving.close()
  await waitUntil('released', () => app.taskWatch.size === 0)

  const streams = await Promise.all([1, 2, 3].map(() => openStream(`${base}/v1/tasks/${id}/events`)))
  await waitUntil('three streams', () => app.taskWatch.size === 3)
  const started = performance.now()
  await app.close()
  const took = performance.now() - started
  // Streams that held it would keep the close open while they last; the bound leaves room for a loaded machine.
  t.ok(took < 5000, `open streams did not hold the shutdown (close took ${took.toFixed(0)} ms)`)
  await Promise.all(streams.map((stream) => stream.ended))
  t.ok(streams.every((stream) => statusEvents(stream.events).length === 1), 'each had its current status before the end')
})
