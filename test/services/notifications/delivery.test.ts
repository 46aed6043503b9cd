import t from 'tap'
import { Webhook } from 'standardwebhooks'
import type { App } from '../../../src/app.js'
import { generateSecret } from '../../../src/services/notifications/signing.js'
import { build, seedTask, taskId, sqliteDb } from '../../helper.js'
import { startWebhookConsumer, waitUntil, type Received, type WebhookConsumer } from '../../fixtures/webhook-consumer.js'

const SECRET = generateSecret()
// Tiny pauses so a whole retry schedule runs in well under a second.
const FAST = { NOTIFY_ALLOW_PRIVATE: 'true', NOTIFY_SECRET: SECRET, NOTIFY_RETRY_SCHEDULE: '0.03,0.05,0.05,0.1,0.1,0.2,0.2', NOTIFY_TIMEOUT_MS: '1000' }

async function consumerFor (t: { teardown: (fn: () => unknown) => void }): Promise<WebhookConsumer> {
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  return consumer
}

/** A task moved to processing, then (unless told otherwise) to success: two notifications. */
async function runTask (app: App, finish: 'success' | 'failed' | null = 'success'): Promise<{ id: string, seq: number }> {
  const tid = taskId()
  const task = await seedTask(app.taskStore, { task_id: tid })
  if (finish) await app.taskStore.applyUpdate(task.seq, tid, { status: finish, providerStatus: finish, fileId: finish === 'success' ? '205258526306433' : null }, 'callback')
  return task
}

const deliveries = async (app: App, query = '') => (await app.inject(`/v1/deliveries?limit=100${query}`)).json().items as Array<{
  id: string, task: string, status: string, state: string, dead_reason: string | null, attempts: Array<{ status_code: number | null, error: string | null, latency_ms: number }>
}>
const statusOf = (message: Received): string => JSON.parse(message.body).status

t.test('a consumer that is down for a while gets every notification once it is back, in order per task, each signature valid', async (t) => {
  const consumer = await consumerFor(t)
  await consumer.down()
  // FAST's schedule with a longer tail: 0.73 s of retries could run out before a loaded machine brings the consumer up.
  const app = await build(t, { ...FAST, NOTIFY_URL: consumer.url, NOTIFY_RETRY_SCHEDULE: `${FAST.NOTIFY_RETRY_SCHEDULE},0.5,1,2` })
  const tasks = [await runTask(app), await runTask(app), await runTask(app, 'failed')]

  await waitUntil('some attempts were refused', () => (sqliteDb(app).prepare('SELECT COUNT(*) AS n FROM notification_attempts').get() as { n: number }).n >= 6)
  await consumer.up()
  consumer.script = [{ status: 503 }, { status: 503 }, { status: 500 }]
  await waitUntil('everything is delivered', async () => consumer.received.length >= 9 && app.notifications.worker.inFlight === 0 &&
    (await app.notifications.outbox.storage.list({ state: 'pending', limit: 1 })).length === 0)

  const verifier = new Webhook(SECRET)
  for (const message of consumer.received) {
    t.same(verifier.verify(message.body, message.headers as Record<string, string>), JSON.parse(message.body), 'valid signature')
    t.equal(message.headers['content-type'], 'application/json')
  }
  for (const task of tasks) {
    const mine = consumer.received.filter((message) => JSON.parse(message.body).id === task.id)
    const statuses = mine.map(statusOf)
    const rank = (status: string) => ['processing', 'success', 'failed'].indexOf(status) > 0 ? 2 : 1
    t.same([...statuses].sort((a, b) => rank(a) - rank(b)), statuses, `task ${task.id}: never processing after a final status`)
    t.same([...new Set(statuses)], ['processing', task === tasks[2] ? 'failed' : 'success'])
  }
  const byId = new Map<string, Set<string>>()
  for (const message of consumer.received) byId.set(message.headers['webhook-id'] as string, (byId.get(message.headers['webhook-id'] as string) ?? new Set()).add(message.body))
  t.equal(byId.size, 6, 'six messages, whatever the retries')
  for (const bodies of byId.values()) t.equal(bodies.size, 1, 'a retry sends the same body under the same webhook-id')

  const all = await deliveries(app)
  t.equal(all.length, 6)
  for (const delivery of all) {
    t.equal(delivery.state, 'delivered')
    t.equal(delivery.attempts.at(-1)!.status_code, 200)
    if (delivery.status === 'processing') {
      t.ok(delivery.attempts.length >= 2, 'refused attempts were recorded too')
      t.match(delivery.attempts[0], { status_code: null, error: /ECONNREFUSED/, latency_ms: Number })
    } else {
      t.not(delivery.attempts[0]!.status_code, null, 'a final status waited for its processing message, so it was never refused')
    }
  }
})

t.test('deliveries of one task wait for the earlier one: processing retried, success only after it', async (t) => {
  const consumer = await consumerFor(t)
  consumer.script = [{ status: 503 }, { status: 502 }]
  const app = await build(t, { ...FAST, NOTIFY_URL: consumer.url })
  await runTask(app)
  await consumer.waitFor(4)
  t.same(consumer.received.map(statusOf), ['processing', 'processing', 'processing', 'success'])
})

t.test('a later message queues without a due time while an earlier one is pending, and is released when it dies', async (t) => {
  const consumer = await consumerFor(t)
  consumer.fallback = { status: 500 }
  // One retry, an hour away: the processing message stays pending.
  const app = await build(t, { ...FAST, NOTIFY_URL: consumer.url, NOTIFY_RETRY_SCHEDULE: '3600' })
  await runTask(app)
  await consumer.waitFor(1)
  await waitUntil('the failure is recorded', () => app.notifications.worker.inFlight === 0)
  const [success, processing] = await deliveries(app, '&state=pending')
  t.match(processing, { status: 'processing', attempts: [{ status_code: 500 }] })
  t.match(success, { status: 'success', next_attempt_at: null, attempts: [] }, 'queued: not even looked at by the worker')
  const retrying = (await app.notifications.outbox.storage.byId(processing!.id))!
  t.equal(await app.notifications.outbox.storage.nextDueAt(), retrying.next_attempt_at, 'the processing message is the one ready')

  // As if the processing message had died with nothing released (a bug, or a hand-edited database): the start heals it.
  consumer.fallback = { status: 200 }
  sqliteDb(app).prepare("UPDATE notification_deliveries SET state = 'failed', next_attempt_at = NULL WHERE status = 'processing'").run()
  t.equal(await app.notifications.outbox.storage.releaseOrphans(new Date().toISOString()), 1)
  app.notifications.worker.wake()
  await consumer.waitFor(2)
  t.same(consumer.received.map(statusOf), ['processing', 'success'])
})

t.test('Retry-After is honoured on 429 and 503, not on other statuses', async (t) => {
  const consumer = await consumerFor(t)
  consumer.script = [{ status: 429, headers: { 'retry-after': '1' } }, { status: 500, headers: { 'retry-after': '30' } }]
  const app = await build(t, { ...FAST, NOTIFY_URL: consumer.url })
  await runTask(app, null)
  const [first, second, third] = await consumer.waitFor(3, 4000)
  t.ok(second!.at - first!.at >= 950, `waited ${second!.at - first!.at} ms as the 429 asked, not the schedule's 30 ms`)
  t.ok(third!.at - second!.at < 900, `a 500's Retry-After is ignored (${third!.at - second!.at} ms)`)
})

t.test('an attempt that takes too long is abandoned and retried; redirects are not followed', async (t) => {
  const consumer = await consumerFor(t)
  const elsewhere = await consumerFor(t)
  consumer.script = [{ status: 200, delayMs: 600 }, { status: 302, headers: { location: elsewhere.url } }]
  const app = await build(t, { ...FAST, NOTIFY_URL: consumer.url, NOTIFY_TIMEOUT_MS: '150' })
  await runTask(app, null)
  await waitUntil('delivered', async () => (await app.notifications.outbox.storage.list({ state: 'delivered', limit: 1 })).length === 1)
  const [delivery] = await deliveries(app)
  t.match(delivery!.attempts, [
    { status_code: null, error: /timeout: no answer within 150 ms/ },
    { status_code: 302, error: /redirects are not followed/ },
    { status_code: 200, error: null }
  ])
  t.ok(delivery!.attempts[0]!.latency_ms >= 140 && delivery!.attempts[0]!.latency_ms < 600, 'the deadline cut the attempt')
  t.equal(elsewhere.received.length, 0, 'the redirect target never heard from us')
})

t.test('after the last scheduled attempt a delivery is dead, listed as failed, and a replay sends it again under the same id', async (t) => {
  const consumer = await consumerFor(t)
  consumer.fallback = { status: 500 }
  const app = await build(t, { ...FAST, NOTIFY_URL: consumer.url, NOTIFY_RETRY_SCHEDULE: '0.02,0.02' })
  const task = await runTask(app, null)
  await waitUntil('dead', async () => (await app.notifications.outbox.storage.list({ state: 'failed', limit: 1 })).length === 1)
  const [dead] = await deliveries(app, '&state=failed')
  t.match(dead, { task: task.id, status: 'processing', state: 'failed', dead_reason: 'attempts_exhausted', next_attempt_at: null })
  t.same(dead!.attempts.map((attempt) => attempt.status_code), [500, 500, 500], 'first attempt and two retries')
  t.match(dead!.attempts[0]!.error, /HTTP 500: consumer says 500/)

  consumer.fallback = { status: 204 }
  const replay = await app.inject({ method: 'POST', url: `/v1/deliveries/${dead!.id}/retry` })
  t.equal(replay.statusCode, 202)
  t.match(replay.json(), { id: dead!.id, state: 'pending', dead_reason: null })
  await waitUntil('delivered', () => consumer.received.length === 4)
  await waitUntil('recorded', async () => (await app.notifications.outbox.storage.byId(dead!.id))!.state === 'delivered')
  t.equal(consumer.received[3]!.headers['webhook-id'], dead!.id, 'the same webhook-id, so the consumer can deduplicate')
  t.same((await deliveries(app))[0]!.attempts.map((attempt) => attempt.status_code), [500, 500, 500, 204], 'every attempt kept')
})

t.test('410 Gone kills the delivery and everything else for that URL until an admin replays', async (t) => {
  const consumer = await consumerFor(t)
  consumer.fallback = { status: 410 }
  const app = await build(t, { ...FAST, NOTIFY_URL: consumer.url })
  await runTask(app)
  await waitUntil('both dead', async () => (await app.notifications.outbox.storage.list({ state: 'failed', limit: 5 })).length === 2)
  await runTask(app, null)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(consumer.received.length, 1, 'one request only: the 410 stopped the rest')
  const dead = await deliveries(app, '&state=failed')
  t.same(dead.map((delivery) => [delivery.status, delivery.dead_reason]), [['processing', 'url_gone'], ['success', 'url_gone'], ['processing', 'gone']])
  t.equal(dead[1]!.attempts.length, 0, 'never sent')

  consumer.fallback = { status: 200 }
  const retried = await app.inject({ method: 'POST', url: '/v1/deliveries/retry', payload: { since: new Date(Date.now() - 60_000).toISOString() } })
  t.same(retried.json(), { retried: 3, skipped: 0 })
  await consumer.waitFor(4)
  await waitUntil('all delivered', async () => (await app.notifications.outbox.storage.list({ state: 'delivered', limit: 5 })).length === 3)
})

t.test('a replay that would go back in time is refused; the bulk form skips it', async (t) => {
  const consumer = await consumerFor(t)
  consumer.script = [{ status: 500 }, { status: 500 }]
  const app = await build(t, { ...FAST, NOTIFY_URL: consumer.url, NOTIFY_RETRY_SCHEDULE: '0.02' })
  await runTask(app)
  await waitUntil('settled', async () => (await app.notifications.outbox.storage.list({ state: 'delivered', limit: 1 })).length === 1)
  const [success, processing] = await deliveries(app)
  t.match(processing, { status: 'processing', state: 'failed' })
  t.match(success, { status: 'success', state: 'delivered' })
  const res = await app.inject({ method: 'POST', url: `/v1/deliveries/${processing!.id}/retry` })
  t.equal(res.statusCode, 409)
  t.equal(res.json().code, 'delivery_superseded')
  const bulk = await app.inject({ method: 'POST', url: '/v1/deliveries/retry', payload: { since: '2000-01-01T00:00:00Z' } })
  t.same(bulk.json(), { retried: 0, skipped: 1 })
  t.same(consumer.received.map(statusOf), ['processing', 'processing', 'success'], 'no processing after success')
})

t.test('a task\'s own notify_url and NOTIFY_URL each get a delivery; the same URL gets one', async (t) => {
  const own = await consumerFor(t)
  const global = await consumerFor(t)
  const app = await build(t, { ...FAST, NOTIFY_URL: global.url })
  const tid = taskId()
  const task = await seedTask(app.taskStore)
  sqliteDb(app).prepare('UPDATE tasks SET notify_url = ? WHERE seq = ?').run(own.url, task.seq)
  await app.taskStore.applyUpdate(task.seq, tid, { status: 'processing', providerStatus: null }, 'submit')
  const same = await seedTask(app.taskStore)
  sqliteDb(app).prepare('UPDATE tasks SET notify_url = ? WHERE seq = ?').run(global.url, same.seq)
  await app.taskStore.applyUpdate(same.seq, taskId(), { status: 'processing', providerStatus: null }, 'submit')
  await own.waitFor(1)
  await global.waitFor(2)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(own.received.length, 1)
  t.equal(global.received.length, 2)
  t.not(own.received[0]!.headers['webhook-id'], global.received[0]!.headers['webhook-id'], 'each delivery has its own id')
  t.same(JSON.parse(own.received[0]!.body), (await app.inject('/v1/tasks?limit=2')).json().items[1], 'the body is the task as the list shows it')
})

t.test('without NOTIFY_ALLOW_PRIVATE a delivery to a loopback URL is refused at send time and dies', async (t) => {
  const consumer = await consumerFor(t)
  const app = await build(t, { NOTIFY_SECRET: SECRET, NOTIFY_RETRY_SCHEDULE: '0.02' })
  const task = await seedTask(app.taskStore)
  // As if the host had resolved to a public address at submit and to loopback now (DNS changes).
  sqliteDb(app).prepare('UPDATE tasks SET notify_url = ? WHERE seq = ?').run(consumer.url, task.seq)
  await app.taskStore.applyUpdate(task.seq, taskId(), { status: 'processing', providerStatus: null }, 'submit')
  await waitUntil('dead', async () => (await app.notifications.outbox.storage.list({ state: 'failed', limit: 1 })).length === 1)
  const [dead] = await deliveries(app)
  t.match(dead, { dead_reason: 'notify_url_not_allowed', attempts: [{ status_code: null, error: /127\.0\.0\.1/ }] })
  t.equal(consumer.received.length, 0)
})

t.test('deleting a task (retention) deletes its deliveries and attempts', async (t) => {
  const consumer = await consumerFor(t)
  const app = await build(t, { ...FAST, NOTIFY_URL: consumer.url })
  const task = await runTask(app)
  await consumer.waitFor(2)
  await waitUntil('recorded', async () => (await app.notifications.outbox.storage.list({ state: 'delivered', limit: 5 })).length === 2)
  sqliteDb(app).prepare('DELETE FROM tasks WHERE seq = ?').run(task.seq)
  const count = (table: string) => (sqliteDb(app).prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n
  t.equal(count('notification_deliveries'), 0)
  t.equal(count('notification_attempts'), 0)
})
