// The queue's routes and answers: 202 shape, MiniMax-compatible query, lookups, cancel, queue_full, quotas, idempotency.
import t from 'tap'
import { startWebhookConsumer, waitUntil } from '../fixtures/webhook-consumer.js'
import { getJson, postJson, startStack, submitBody } from '../helper.js'

const TOKENS = ['token-a', 'token-b']
const auth = (token: string) => ({ authorization: `Bearer ${token}` })

// One create a minute: the first submit goes at once, every later one waits (long enough for these tests).
async function queuedStack (t: Parameters<typeof startStack>[0], env: Record<string, string> = {}) {
  return startStack(t, { env: { API_TOKENS: TOKENS.join(','), MINIMAX_SUBMIT_RPM: '1', ...env } })
}

t.test('a submit while the slot is in use is queued: 202 with position and eta, MiniMax-compatible polling answers Queueing', async (t) => {
  const stack = await queuedStack(t)
  const first = await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!))
  t.equal(first.status, 200, 'the first goes at once')
  const second = await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!))
  const third = await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!))
  t.equal(second.status, 202)
  t.equal(second.headers.get('location'), `/v1/tasks/${second.body.id}`)
  t.match(second.body, { id: String, task_id: second.body.id, status: 'queued', queue: { position: 1 }, base_resp: { status_code: 0, status_msg: 'queued' } })
  t.equal(third.body.queue.position, 2)
  t.ok(third.body.queue.eta_s > second.body.queue.eta_s && third.body.queue.eta_s <= 125, `eta grows with the place (${second.body.queue.eta_s} s, ${third.body.queue.eta_s} s)`)

  const query = await getJson(`${stack.url}/v1/query/video_generation?task_id=${second.body.task_id}`, auth(TOKENS[0]!))
  t.same(query.body, { task_id: second.body.id, status: 'Queueing', file_id: '', base_resp: { status_code: 0, status_msg: 'success' } })

  const lookup = (await getJson(`${stack.url}/v1/tasks/${second.body.id}`, auth(TOKENS[0]!))).body
  t.match(lookup, { status: 'queued', task_id: null, queue: { position: 1, eta_s: Number } })
  t.same(lookup.events.map((e: { outcome: string }) => e.outcome), ['created', 'queued'])
  const list = (await getJson(`${stack.url}/v1/tasks?status=queued`, auth(TOKENS[0]!))).body
  t.same(list.items.map((task: { id: string }) => task.id), [third.body.id, second.body.id], 'listed by ?status=queued, newest first')
  t.equal(list.items[0].queue.position, 2)
  const done = (await getJson(`${stack.url}/v1/tasks/${first.body.id}`, auth(TOKENS[0]!))).body
  t.equal(done.queue, null, 'a task that is not queued has queue: null')
  t.equal(stack.fake.tasks.size, 1, 'nothing more was sent')
  const metrics = await (await fetch(`${stack.url}/metrics`, { headers: auth(TOKENS[0]!) })).text()
  t.match(metrics, /s2v_queue_depth\{provider="minimax",caller="token:[0-9a-f]+"\} 2/)
  t.match(metrics, /s2v_tasks\{status="queued"\} 2/)
})

t.test('Idempotency-Key replays a queued answer without queueing twice', async (t) => {
  const stack = await queuedStack(t)
  await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!))
  const headers = { ...auth(TOKENS[0]!), 'idempotency-key': 'k-1' }
  const first = await postJson(`${stack.url}/v1/video_generation`, submitBody(), headers)
  const again = await postJson(`${stack.url}/v1/video_generation`, submitBody(), headers)
  t.equal(first.status, 202)
  t.equal(again.status, 202)
  t.equal(again.headers.get('idempotent-replayed'), 'true')
  t.equal(again.body.id, first.body.id)
  t.equal(await stack.app.taskStore.queries.queuedOfCaller((await stack.app.taskStore.queries.byId(first.body.id))!.caller), 1, 'one task queued')
})

t.test('cancel: a queued task fails with cancelled and is never sent; a task already sent answers 409 not_cancellable', async (t) => {
  const stack = await queuedStack(t, { SUBMIT_DAILY_QUOTA: '3' })
  const sent = await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!))
  const queued = await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!))
  const cancel = await postJson(`${stack.url}/v1/tasks/${queued.body.id}/cancel`, {}, auth(TOKENS[0]!))
  t.equal(cancel.status, 200)
  t.match(cancel.body, { id: queued.body.id, status: 'failed', error: { code: 'cancelled' }, queue: null })
  t.equal(cancel.body.events.at(-1).outcome, 'cancelled')
  const twice = await postJson(`${stack.url}/v1/tasks/${queued.body.id}/cancel`, {}, auth(TOKENS[0]!))
  t.equal(twice.status, 409)
  t.match(twice.body, { code: 'not_cancellable', id: queued.body.id, status: 'failed' })
  const already = await postJson(`${stack.url}/v1/tasks/${sent.body.id}/cancel`, {}, auth(TOKENS[0]!))
  t.equal(already.status, 409)
  t.match(already.body, { code: 'not_cancellable', status: String })
  t.equal((await postJson(`${stack.url}/v1/tasks/nope/cancel`, {}, auth(TOKENS[0]!))).status, 404)
  const quota = (await getJson(`${stack.url}/v1/quota`, auth(TOKENS[0]!))).body
  t.match(quota, { limit: 3, used: 1, remaining: 2, queued: 0, max_queued: 1000 }, 'a cancelled task gives its quota back')
  t.equal(stack.fake.tasks.size, 1, 'the cancelled task was never sent')
})

t.test('MAX_QUEUED_PER_CALLER: 429 queue_full for that caller only', async (t) => {
  const stack = await queuedStack(t, { MAX_QUEUED_PER_CALLER: '2' })
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!))))
  t.same(statuses.map((a) => a.status), [200, 202, 202, 429])
  t.match(statuses[3]!.body, { code: 'queue_full', queued: 2, max_queued: 2, base_resp: { status_code: 1002 } })
  t.equal((await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[1]!))).status, 202, 'another caller still queues')
})

t.test('SUBMIT_DAILY_QUOTA and CALLER_QUOTAS: 429 quota_exceeded with the reset time; GET /v1/quota', async (t) => {
  const stack = await startStack(t, { env: { API_TOKENS: TOKENS.join(','), SUBMIT_DAILY_QUOTA: '2' } })
  const callerB = (await getJson(`${stack.url}/v1/quota`, auth(TOKENS[1]!))).body.caller
  await stack.app.close()
  const stack2 = await startStack(t, { env: { API_TOKENS: TOKENS.join(','), SUBMIT_DAILY_QUOTA: '2', CALLER_QUOTAS: `${callerB}:3` } })
  const a = []
  for (let i = 0; i < 3; i++) a.push(await postJson(`${stack2.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!)))
  t.same(a.map((r) => r.status), [200, 200, 429])
  const midnight = new Date(Math.floor(Date.now() / 86_400_000 + 1) * 86_400_000).toISOString()
  t.match(a[2]!.body, { code: 'quota_exceeded', limit: 2, used: 2, reset_at: midnight })
  t.ok(Number(a[2]!.headers.get('retry-after')) > 0, 'Retry-After until midnight UTC')
  const b = []
  for (let i = 0; i < 4; i++) b.push((await postJson(`${stack2.url}/v1/video_generation`, submitBody(), auth(TOKENS[1]!))).status)
  t.same(b, [200, 200, 200, 429], 'CALLER_QUOTAS overrides the default')
  const quota = await getJson(`${stack2.url}/v1/quota`, auth(TOKENS[0]!))
  t.equal(quota.status, 200)
  t.match(quota.body, { caller: String, limit: 2, used: 2, remaining: 0, reset_at: midnight, queued: 0, max_queued: 1000 })
  const none = await startStack(t)
  t.match((await getJson(`${none.url}/v1/quota`)).body, { caller: 'anonymous', limit: null, remaining: null })
})

t.test('QUEUE_MAX_WAIT_MS: a task queued too long fails with queue_timeout, never sent', async (t) => {
  // A wait the queue's own once-a-second sweep cannot reach during the test: the sweep below is told the time.
  const stack = await queuedStack(t, { QUEUE_MAX_WAIT_MS: '600000' })
  await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!))
  const queued = await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!))
  t.equal(await stack.app.submitQueue.expireOnce(Date.now()), 0, 'not yet')
  t.equal(await stack.app.submitQueue.expireOnce(Date.now() + 601_000), 1, 'expired once past the wait')
  const task = (await getJson(`${stack.url}/v1/tasks/${queued.body.id}`, auth(TOKENS[0]!))).body
  t.match(task, { status: 'failed', error: { code: 'queue_timeout' } })
  t.equal(stack.fake.tasks.size, 1)
})

t.test('a queued task reports queued to long-poll waiters and then its next status', async (t) => {
  const stack = await startStack(t, { env: { MINIMAX_SUBMIT_RPM: '1', SUBMIT_RPM_WINDOW_MS: '3000' } })
  await postJson(`${stack.url}/v1/video_generation`, submitBody())
  const queued = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  t.equal(queued.status, 202)
  const waited = (await getJson(`${stack.url}/v1/tasks/${queued.body.id}?wait=10&status=queued`)).body
  t.not(waited.status, 'queued', `the long-poll answered when it left the queue (${waited.status})`)
})

t.test('notifications and server-sent events report queued like any status, then the rest in order', async (t) => {
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  const stack = await startStack(t, { env: { MINIMAX_SUBMIT_RPM: '1', SUBMIT_RPM_WINDOW_MS: '3000', NOTIFY_URL: consumer.url, NOTIFY_ALLOW_PRIVATE: 'true' } })
  await postJson(`${stack.url}/v1/video_generation`, submitBody())
  const queued = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  t.equal(queued.status, 202)
  const stream = await fetch(`${stack.url}/v1/tasks/${queued.body.id}/events`)
  const text = await stream.text() // the stream ends after the final status
  const streamed = [...text.matchAll(/^id: (\w+)$/gm)].map((m) => m[1])
  t.equal(streamed[0], 'queued', 'the stream starts with queued')
  t.equal(streamed.at(-1), 'success')
  await waitUntil('the queued task\'s notifications', () => consumer.received.filter((r) => JSON.parse(r.body).id === queued.body.id).length >= 4, 10_000)
  const statuses = consumer.received.map((r) => JSON.parse(r.body)).filter((body) => body.id === queued.body.id).map((body) => body.status)
  t.equal(statuses[0], 'queued', 'the first notification says queued')
  t.same(statuses, ['queued', 'submitting', 'processing', 'success'], 'then every other status, in order')
  const first = JSON.parse(consumer.received.find((r) => JSON.parse(r.body).id === queued.body.id)!.body)
  t.match(first, { status: 'queued', task_id: null })
})
