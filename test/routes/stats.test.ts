// GET /v1/stats: counts now, the 24 hours by outcome, submit-to-success timings, budgets, deliveries, challenge latency.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { App } from '../../src/app.js'
import { DeliveriesRepository } from '../../src/db/deliveries-repository.js'
import { newCallbackToken } from '../../src/lib/callback-token.js'
import { build, sqliteDb, taskId } from '../helper.js'

const HOUR = 3_600_000

/** A task created `agoMs` before now, then moved to `status` now (so success takes agoMs). */
async function taskCreatedAgo (app: App, agoMs: number, status: 'submitting' | 'processing' | 'success' | 'failed', caller = 'anonymous') {
  const id = randomUUID()
  const row = await app.taskStore.create({
    id,
    provider: 'minimax',
    model: 'S2V-01',
    status: 'submitting',
    prompt: 'stats',
    prompt_optimizer: null,
    image_ref: 'https://example.com/face.jpg',
    metadata: null,
    callback_token_hash: newCallbackToken(id).hash,
    caller,
    created_at: new Date(Date.now() - agoMs).toISOString(),
    notify_url: null,
    next_poll_at: null
  })
  if (status === 'submitting') return row
  const tid = taskId()
  await app.taskStore.applyUpdate(row.seq, tid, { status: 'processing', providerStatus: 'processing' }, 'submit')
  if (status === 'success') await app.taskStore.applyUpdate(row.seq, tid, { status: 'success', providerStatus: 'success', fileId: '1' }, 'callback')
  if (status === 'failed') await app.taskStore.applyUpdate(row.seq, tid, { status: 'failed', providerStatus: 'failed', error: { code: '1027', message: 'sensitive' } }, 'callback')
  return row
}

// The bucket (0 = oldest, 23 = the current hour) a task created agoMs before now falls in.
const bucketOf = (agoMs: number) => 23 - (Math.floor(Date.now() / HOUR) - Math.floor((Date.now() - agoMs) / HOUR))

t.test('an empty service: zeros and nulls, 24 empty hours, the budgets', async (t) => {
  const app = await build(t, { MINIMAX_API_KEY: 'k' })
  const res = await app.inject({ url: '/v1/stats' })
  t.equal(res.statusCode, 200)
  const stats = res.json()
  t.same(stats.tasks, { by_status: { queued: 0, submitting: 0, processing: 0, success: 0, failed: 0 }, total: 0 })
  t.equal(stats.last_24h.hours.length, 24)
  t.equal(Date.parse(stats.last_24h.hours[23].hour), Math.floor(Date.now() / HOUR) * HOUR, 'the current hour last')
  t.same(stats.last_24h.submit_to_success, { count: 0, median_ms: null, p95_ms: null })
  t.equal(stats.last_24h.success_rate, null)
  t.same(stats.queue, { depth: 0 }, 'the submit queue, empty')
  t.same(stats.providers, [{ provider: 'minimax', per_minute: 10, used: 0 }])
  t.same(stats.deliveries, { dead: 0, retrying: 0, pending: 0 })
  t.same(stats.challenge, { count: 0, mean_ms: null, p50_ms: null, p95_ms: null, over_1s: 0 })
})

t.test('tasks by status and by hour of submission, success rate, median and p95 to success', async (t) => {
  const app = await build(t)
  for (const ago of [10 * 60_000, 20 * 60_000, 30 * 60_000]) await taskCreatedAgo(app, ago, 'success')
  await taskCreatedAgo(app, 5 * HOUR, 'success')
  await taskCreatedAgo(app, 5 * HOUR, 'failed')
  await taskCreatedAgo(app, 60_000, 'processing')
  await taskCreatedAgo(app, 1000, 'submitting')
  await taskCreatedAgo(app, 30 * HOUR, 'success') // outside the window: counted now, not in the 24 hours
  const stats = (await app.inject({ url: '/v1/stats' })).json()
  t.same(stats.tasks.by_status, { queued: 0, submitting: 1, processing: 1, success: 5, failed: 1 })
  t.equal(stats.tasks.total, 8)
  t.equal(stats.last_24h.created, 7)
  t.equal(stats.last_24h.succeeded, 4)
  t.equal(stats.last_24h.failed, 1)
  t.equal(stats.last_24h.success_rate, 0.8)
  const hours = stats.last_24h.hours as Array<{ success: number, failed: number, running: number }>
  t.match(hours[bucketOf(5 * HOUR)], { success: 1, failed: 1, running: 0 }, 'five hours ago: one of each')
  t.equal(hours.reduce((sum, h) => sum + h.success + h.failed + h.running, 0), 7, 'every task of the window in one bucket')
  t.equal(hours.reduce((sum, h) => sum + h.running, 0), 2, 'submitting and processing count as running')
  // Durations: 10, 20, 30 min and 5 h (nearest rank: the median of four is the second, p95 the fourth).
  const { count, median_ms: median, p95_ms: p95 } = stats.last_24h.submit_to_success
  t.equal(count, 4)
  t.ok(Math.abs(median - 20 * 60_000) < 5000, `median ${median} ms ≈ 20 min`)
  t.ok(Math.abs(p95 - 5 * HOUR) < 5000, `p95 ${p95} ms ≈ 5 h`)
})

t.test('deliveries failing, retrying and pending', async (t) => {
  const app = await build(t)
  const task = await taskCreatedAgo(app, 1000, 'processing')
  const repo = new DeliveriesRepository(sqliteDb(app))
  const now = new Date().toISOString()
  const delivery = (state: 'pending' | 'failed' | 'delivered') => ({
    id: `msg_${randomUUID().replaceAll('-', '')}`, task_seq: task.seq, url: 'https://hooks.example.com/x', status: 'processing', payload: '{}', state, next_attempt_at: state === 'pending' ? '2999-01-01T00:00:00.000Z' : null, dead_reason: state === 'failed' ? 'attempts_exhausted' as const : null, created_at: now, caller: 'anonymous'
  })
  for (const state of ['failed', 'failed', 'pending', 'delivered'] as const) repo.insert(delivery(state))
  const stats = (await app.inject({ url: '/v1/stats' })).json()
  t.same(stats.deliveries, { dead: 2, retrying: 0, pending: 1 })
})

t.test('challenge latency comes from the service\'s own histogram', async (t) => {
  const app = await build(t)
  for (let i = 0; i < 5; i++) await app.inject({ method: 'POST', url: '/get_callback', payload: { challenge: `c${i}` } })
  await app.inject({ method: 'POST', url: '/get_callback', payload: { task_id: '1', status: 'success' } }) // a push, not a challenge
  const { challenge } = (await app.inject({ url: '/v1/stats' })).json()
  t.equal(challenge.count, 5, 'challenges only')
  t.ok(challenge.mean_ms > 0 && challenge.mean_ms < 1000, `mean ${challenge.mean_ms} ms`)
  t.ok(challenge.p50_ms > 0 && challenge.p50_ms <= challenge.p95_ms, `p50 ${challenge.p50_ms} ≤ p95 ${challenge.p95_ms}`)
  t.equal(challenge.over_1s, 0)
  const metrics = await app.inject({ url: '/metrics' })
  t.match(metrics.body, /s2v_callback_challenge_duration_seconds_count 5/, 'the same histogram Prometheus scrapes')
})

t.test('the overview needs the token', async (t) => {
  const app = await build(t, { API_TOKENS: 'stats-token' })
  t.equal((await app.inject({ url: '/v1/stats' })).statusCode, 401)
  t.equal((await app.inject({ url: '/v1/stats', headers: { authorization: 'Bearer stats-token' } })).json().scope, 'caller', 'a caller\'s token: its own numbers')
})

t.test('a caller who is not an operator gets its own tasks\' numbers', async (t) => {
  const app = await build(t, { API_TOKENS: 'alice:alice-token,bob:bob-token', ADMIN_TOKENS: 'ops:ops-token' })
  await taskCreatedAgo(app, 60_000, 'success', 'alice')
  await taskCreatedAgo(app, 60_000, 'failed', 'bob')
  await taskCreatedAgo(app, 60_000, 'processing', 'bob')
  const stats = async (token: string) => (await app.inject({ url: '/v1/stats', headers: { authorization: `Bearer ${token}` } })).json()
  const alice = await stats('alice-token')
  t.equal(alice.scope, 'caller')
  t.same(alice.tasks.by_status, { queued: 0, submitting: 0, processing: 0, success: 1, failed: 0 })
  t.equal(alice.last_24h.success_rate, 1)
  const bob = await stats('bob-token')
  t.same(bob.tasks.by_status, { queued: 0, submitting: 0, processing: 1, success: 0, failed: 1 })
  t.equal(bob.last_24h.submit_to_success.count, 0)
  const ops = await stats('ops-token')
  t.equal(ops.scope, 'all')
  t.equal(ops.tasks.total, 3)
})
