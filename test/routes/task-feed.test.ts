// GET /v1/events over a real socket: every task's status changes, keep-alives, let go on disconnect and on shutdown.
import t from 'tap'
import { build, freePort, seedTask, taskId, sqliteDb } from '../helper.js'
import { waitUntil } from '../fixtures/webhook-consumer.js'

type SseEvent = { event?: string, data?: string, comment?: string }

async function openFeed (url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController()
  const response = await fetch(url, { headers, signal: controller.signal })
  const events: SseEvent[] = []
  const ended = (async () => {
    let buffer = ''
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let split
        while ((split = buffer.indexOf('\n\n')) >= 0) {
          const event: SseEvent = {}
          for (const line of buffer.slice(0, split).split('\n')) {
            if (line.startsWith(':')) event.comment = line.slice(1).trim()
            else if (line.startsWith('event:')) event.event = line.slice(6).trim()
            else if (line.startsWith('data:')) event.data = line.slice(5).trim()
          }
          buffer = buffer.slice(split + 2)
          events.push(event)
        }
      }
    } catch {}
  })()
  return { response, events, ended, close: () => controller.abort() }
}

async function listening (t: Parameters<typeof build>[0], env: Record<string, string> = {}) {
  const app = await build(t, env)
  const port = await freePort()
  await app.listen({ port, host: '127.0.0.1' })
  return { app, base: `http://127.0.0.1:${port}` }
}

const statusEvents = (events: SseEvent[]) => events.filter((event) => event.event === 'status').map((event) => JSON.parse(event.data!) as { id: string, status: string })

t.test('one stream carries the status changes of every task, in order', async (t) => {
  const { app, base } = await listening(t)
  const feed = await openFeed(`${base}/v1/events`)
  t.teardown(feed.close)
  t.equal(feed.response.status, 200)
  t.match(feed.response.headers.get('content-type'), /^text\/event-stream/)
  await waitUntil('the stream is watching', () => app.taskWatch.size === 1)
  const first = await seedTask(app.taskStore, { task_id: taskId() })
  const secondTaskId = taskId()
  const second = await seedTask(app.taskStore, { task_id: secondTaskId })
  await app.inject({ method: 'POST', url: `/get_callback/${second.token}`, payload: { task_id: secondTaskId, status: 'success', file_id: '7' } })
  await waitUntil('three changes', () => statusEvents(feed.events).length === 3)
  t.same(statusEvents(feed.events).map((task) => [task.id, task.status]), [[first.id, 'processing'], [second.id, 'processing'], [second.id, 'success']])
  t.notOk('events' in statusEvents(feed.events)[2]!, 'tasks without their history')
})

t.test('keep-alives while nothing happens; a client that leaves lets go of its watch', async (t) => {
  const { app, base } = await listening(t, { SSE_KEEPALIVE_MS: '20' })
  const feed = await openFeed(`${base}/v1/events`)
  await waitUntil('keep-alives', () => feed.events.filter((event) => event.comment === 'keep-alive').length >= 2, 2000)
  feed.close()
  await waitUntil('the watch is released', () => app.taskWatch.size === 0)
  t.pass()
})

t.test('a caller\'s stream carries its own tasks only; an operator\'s carries every task', async (t) => {
  const { app, base } = await listening(t, { API_TOKENS: 'alice:alice-token,bob:bob-token', ADMIN_TOKENS: 'ops:ops-token' })
  const bob = await openFeed(`${base}/v1/events`, { authorization: 'Bearer bob-token' })
  const ops = await openFeed(`${base}/v1/events`, { authorization: 'Bearer ops-token' })
  t.teardown(() => { bob.close(); ops.close() })
  await waitUntil('both watching', () => app.taskWatch.size === 2)
  const alices = await seedTask(app.taskStore, { task_id: taskId() })
  sqliteDb(app).prepare("UPDATE tasks SET caller = 'bob' WHERE seq = ?").run((await seedTask(app.taskStore)).seq)
  const bobs = (await app.taskStore.listFor({ caller: 'bob', isAdmin: false }, { limit: 1 }))[0]!
  await app.taskStore.applyUpdate(bobs.seq, taskId(), { status: 'processing', providerStatus: null }, 'submit')
  // Both streams are written in one pass, but each socket is read on its own: wait for bob's event too.
  await waitUntil('the operator saw both, bob his own', () => statusEvents(ops.events).length === 2 && statusEvents(bob.events).length >= 1)
  t.same(statusEvents(ops.events).map((task) => task.id), [alices.id, bobs.id])
  t.same(statusEvents(bob.events).map((task) => task.id), [bobs.id], 'bob never hears of alice\'s task')
})

t.test('the streams that may see a change share one event for it, made once', async (t) => {
  const { app, base } = await listening(t, { API_TOKENS: 'alice:alice-token,bob:bob-token', ADMIN_TOKENS: 'ops:ops-token' })
  const tid = taskId()
  const { token } = await seedTask(app.taskStore, { task_id: tid, caller: 'alice' })
  const feeds = await Promise.all(['alice', 'alice', 'ops', 'bob'].map((who) => openFeed(`${base}/v1/events`, { authorization: `Bearer ${who}-token` })))
  t.teardown(() => { for (const feed of feeds) feed.close() })
  await waitUntil('all watching', () => app.taskWatch.size === 4)
  const links = app.downloadLinks
  const forLookup = links.forLookup
  let signed = 0
  links.forLookup = (row) => { signed += 1; return forLookup(row) }
  t.teardown(() => { links.forLookup = forLookup })
  await app.inject({ method: 'POST', url: `/get_callback/${token}`, payload: { task_id: tid, status: 'success', file_id: '7' } })
  const [alice1, alice2, ops, bob] = feeds as [typeof feeds[0], typeof feeds[0], typeof feeds[0], typeof feeds[0]]
  await waitUntil('three streams have it', () => [alice1, alice2, ops].every((feed) => feed.events.some((event) => event.event === 'status')))
  t.equal(signed, 1, 'signed once for three streams')
  const data = [alice1, alice2, ops].map((feed) => feed.events.find((event) => event.event === 'status')!.data)
  t.ok(data.every((one) => one === data[0]), 'the same bytes on each')
  t.equal(statusEvents(bob.events).length, 0, 'bob\'s stream never hears of alice\'s task')
})

t.test('the stream needs the token, and ends when the service closes', async (t) => {
  const { app, base } = await listening(t, { API_TOKENS: 'feed-token' })
  const refused = await fetch(`${base}/v1/events`)
  t.equal(refused.status, 401)
  t.equal((await refused.json() as { code: string }).code, 'unauthorized')
  const feed = await openFeed(`${base}/v1/events`, { authorization: 'Bearer feed-token' })
  await waitUntil('watching', () => app.taskWatch.size === 1)
  const started = Date.now()
  await app.close()
  await feed.ended
  t.ok(Date.now() - started < 2000, 'an endless stream does not hold the shutdown')
})
