import t from 'tap'
import { build, seedTask, taskId } from '../helper.js'
import { waitUntil } from '../fixtures/webhook-consumer.js'

// A URL nothing listens on: deliveries fail fast and die after one retry.
const DEAD_END = { NOTIFY_ALLOW_PRIVATE: 'true', NOTIFY_URL: 'http://127.0.0.1:9/hooks', NOTIFY_RETRY_SCHEDULE: '0.01' }

t.test('deliveries page newest first with a cursor, and filter by state and task', async (t) => {
  const app = await build(t, DEAD_END)
  const tasks = await Promise.all(Array.from({ length: 3 }, async () => await seedTask(app.taskStore, { task_id: taskId() })))
  await waitUntil('all dead', async () => (await app.notifications.outbox.storage.list({ state: 'failed', limit: 5 })).length === 3)

  const first = (await app.inject('/v1/deliveries?limit=2')).json()
  t.same(first.items.map((item: { task: string }) => item.task), [tasks[2]!.id, tasks[1]!.id])
  t.type(first.next_cursor, 'string')
  const second = (await app.inject(`/v1/deliveries?limit=2&cursor=${first.next_cursor}`)).json()
  t.same(second.items.map((item: { task: string }) => item.task), [tasks[0]!.id])
  t.equal(second.next_cursor, null)

  const failed = (await app.inject('/v1/deliveries?state=failed')).json().items
  t.equal(failed.length, 3)
  t.match(failed[0], { id: /^msg_/, url: DEAD_END.NOTIFY_URL, status: 'processing', state: 'failed', dead_reason: 'attempts_exhausted', attempts: [{ status_code: null, error: /ECONNREFUSED/ }, {}] })
  t.equal((await app.inject('/v1/deliveries?state=delivered')).json().items.length, 0)
  const mine = (await app.inject(`/v1/deliveries?task=${tasks[1]!.id}&state=failed`)).json().items
  t.same(mine.map((item: { task: string }) => item.task), [tasks[1]!.id])
  const one = await app.inject(`/v1/deliveries/${mine[0].id}`)
  t.same(one.json(), mine[0])
})

t.test('bad input on the deliveries routes answers 4xx JSON', async (t) => {
  const app = await build(t, DEAD_END)
  const cases: Array<[string, string, unknown, number, string]> = [
    ['GET', '/v1/deliveries?state=dead', undefined, 400, 'invalid_request'],
    ['GET', '/v1/deliveries?limit=0', undefined, 400, 'invalid_request'],
    ['GET', '/v1/deliveries?cursor=garbage', undefined, 400, 'invalid_cursor'],
    ['GET', '/v1/deliveries?extra=1', undefined, 400, 'invalid_request'],
    ['GET', '/v1/deliveries?task=nope', undefined, 404, 'not_found'],
    ['GET', '/v1/deliveries/msg_unknown', undefined, 404, 'not_found'],
    ['GET', '/v1/deliveries/not-a-message-id', undefined, 400, 'invalid_request'],
    ['POST', '/v1/deliveries/msg_unknown/retry', undefined, 404, 'not_found'],
    ['POST', '/v1/deliveries/retry', {}, 400, 'invalid_request'],
    ['POST', '/v1/deliveries/retry', { since: 'yesterday' }, 400, 'invalid_request'],
    ['POST', '/v1/deliveries/retry', { since: '2026-01-02T00:00:00Z', until: '2026-01-01T00:00:00Z' }, 400, 'invalid_range'],
    ['POST', '/v1/deliveries/retry', { since: '2026-01-01T00:00:00Z', extra: 1 }, 400, 'invalid_request']
  ]
  for (const [method, url, payload, status, code] of cases) {
    const res = await app.inject({ method: method as 'GET' | 'POST', url, ...(payload === undefined ? {} : { payload: payload as object }) })
    t.equal(res.statusCode, status, `${method} ${url} ${JSON.stringify(payload ?? '')}`)
    t.equal(res.json().code, code)
  }
  const malformed = await app.inject({ method: 'POST', url: '/v1/deliveries/retry', headers: { 'content-type': 'application/json' }, payload: '{"since":' })
  t.equal(malformed.statusCode, 400)
})

t.test('a pending delivery cannot be replayed', async (t) => {
  // A far-off first retry keeps the delivery pending.
  const app = await build(t, { ...DEAD_END, NOTIFY_RETRY_SCHEDULE: '3600' })
  await seedTask(app.taskStore, { task_id: taskId() })
  await waitUntil('attempted once', async () => ((await app.notifications.outbox.storage.list({ limit: 1 }))[0]?.round_attempts ?? 0) === 1)
  const [pending] = (await app.inject('/v1/deliveries?state=pending')).json().items
  t.ok(Date.parse(pending.next_attempt_at) > Date.now() + 2000_000, 'next attempt in about an hour')
  const res = await app.inject({ method: 'POST', url: `/v1/deliveries/${pending.id}/retry` })
  t.equal(res.statusCode, 409)
  t.equal(res.json().code, 'delivery_pending')
})

t.test('the deliveries routes need a token when API_TOKENS is set', async (t) => {
  const app = await build(t, { ...DEAD_END, API_TOKENS: 'secret-token' })
  for (const [method, url] of [['GET', '/v1/deliveries'], ['GET', '/v1/deliveries/msg_x'], ['POST', '/v1/deliveries/msg_x/retry'], ['POST', '/v1/deliveries/retry']] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 401, `${method} ${url}`)
  }
  t.equal((await app.inject({ url: '/v1/deliveries', headers: { authorization: 'Bearer secret-token' } })).statusCode, 200)
})
