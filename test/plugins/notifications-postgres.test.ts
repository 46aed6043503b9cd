// The notifications of two replicas on one PostgreSQL database: each push's signed message reaches NOTIFY_URL once,
// whichever replica's worker claims it.
import { Webhook } from 'standardwebhooks'
import t from 'tap'
import { generateSecret } from '../../src/services/notifications/signing.js'
import { build, seedTask, taskId } from '../helper.js'
import { startWebhookConsumer, waitUntil } from '../fixtures/webhook-consumer.js'
import { postgres } from '../db/task-storage-engines.js'

// Started before any test is queued (see startPostgres).
const pg = await postgres(t)

const SECRET = generateSecret()
const TASKS = 10
// Long enough for a second copy of any message to arrive, were one sent: attempts to loopback take milliseconds.
const QUIET_MS = 1000

t.test('two replicas on PostgreSQL: every push\'s signed notification arrives once', { skip: pg ? false : 'no PostgreSQL' }, async (t) => {
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  const env = { DATABASE_URL: await pg!.freshUrl(), NOTIFY_URL: consumer.url, NOTIFY_SECRET: SECRET, NOTIFY_ALLOW_PRIVATE: 'true', NOTIFY_TIMEOUT_MS: '2000' }
  const one = await build(t, env)
  const two = await build(t, env)

  // Pushes to either replica; both workers look for due deliveries after every one (as if each had been woken).
  const tokens: Array<{ token: string, taskId: string }> = []
  for (let i = 0; i < TASKS; i++) {
    const provided = taskId()
    const { token } = await seedTask((i % 2 === 0 ? one : two).taskStore)
    tokens.push({ token, taskId: provided })
  }
  await Promise.all(tokens.map(({ token, taskId: provided }, i) =>
    (i % 2 === 0 ? one : two).inject({ method: 'POST', url: `/get_callback/${token}`, payload: { task_id: provided, status: 'processing' } })))
  for (let i = 0; i < 5; i++) {
    one.notifications.worker.wake()
    two.notifications.worker.wake()
    await new Promise((resolve) => setImmediate(resolve))
  }

  const received = await consumer.waitFor(TASKS, 10_000)
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS))
  t.equal(consumer.received.length, TASKS, 'one message per push, none twice')
  const ids = new Set(consumer.received.map((message) => message.headers['webhook-id']))
  t.equal(ids.size, TASKS, 'each its own webhook-id')
  const webhook = new Webhook(SECRET)
  for (const message of received) t.match(webhook.verify(message.body, message.headers as Record<string, string>), { status: 'processing' }, 'signed')
  await waitUntil('both replicas recorded the outcomes', async () =>
    (await one.notifications.outbox.storage.list({ state: 'delivered', limit: 100 })).length === TASKS)
  const listed = (await two.inject('/v1/deliveries?state=delivered&limit=100')).json().items as Array<{ attempts: unknown[] }>
  t.equal(listed.length, TASKS, 'the other replica lists them too')
  t.ok(listed.every((delivery) => delivery.attempts.length === 1), 'one attempt each')
})
