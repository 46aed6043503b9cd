// The notifications plugin across restarts and shutdowns, its generated secret, and a whole flow with the fake MiniMax.
import t from 'tap'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { Webhook } from 'standardwebhooks'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { generateSecret } from '../../src/services/notifications/signing.js'
import { getJson, LogCapture, postJson, seedTask, startStack, submitBody, taskId, tempDir } from '../helper.js'
import { startWebhookConsumer, waitUntil } from '../fixtures/webhook-consumer.js'

const SECRET = generateSecret()

async function appOn (t: { teardown: (fn: () => unknown) => void }, path: string, env: Record<string, string>, logs?: LogCapture) {
  const app = await buildApp(loadConfig({ DATABASE_PATH: path, LOG_LEVEL: 'silent', NOTIFY_ALLOW_PRIVATE: 'true', ...env }), logs ? { logger: logs.logger } : {})
  t.teardown(() => app.close())
  await app.ready()
  return app
}

t.test('a restart in the middle of retries loses nothing and repeats nothing but the same webhook-ids', async (t) => {
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  consumer.fallback = { status: 503 }
  const path = join(tempDir(t), 's2v.db')
  const env = { NOTIFY_URL: consumer.url, NOTIFY_SECRET: SECRET, NOTIFY_RETRY_SCHEDULE: '0.02,0.05,0.2,0.2,0.2,0.2' }

  const first = await appOn(t, path, env)
  const tid = taskId()
  const task = await seedTask(first.taskStore, { task_id: tid })
  await first.taskStore.applyUpdate(task.seq, tid, { status: 'success', providerStatus: 'success', fileId: '1' }, 'callback')
  await consumer.waitFor(2)
  await first.close()
  const seenBefore = consumer.received.length

  consumer.fallback = { status: 200 }
  const second = await appOn(t, path, env)
  await waitUntil('both delivered', async () => (await second.notifications.outbox.storage.list({ state: 'delivered', limit: 5 })).length === 2)

  const verifier = new Webhook(SECRET)
  const ids = consumer.received.map((message) => message.headers['webhook-id'] as string)
  t.equal(new Set(ids).size, 2, 'two messages, however many attempts')
  for (const message of consumer.received) t.ok(verifier.verify(message.body, message.headers as Record<string, string>))
  const after = consumer.received.slice(seenBefore).map((message) => JSON.parse(message.body).status)
  t.same(after.slice(-2), ['processing', 'success'], 'resumed in order')
  const items = (await second.inject('/v1/deliveries')).json().items as Array<{ status: string, attempts: Array<{ status_code: number }> }>
  const processing = items.find((item) => item.status === 'processing')!
  t.ok(processing.attempts.length >= 3, 'attempts of both runs are kept')
  t.same(processing.attempts.slice(0, seenBefore).map((attempt) => attempt.status_code), Array(seenBefore).fill(503))
})

t.test('closing abandons an attempt that outlives the grace period; it is sent again after a restart', async (t) => {
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  consumer.script = [{ status: 200, delayMs: 3000 }]
  const path = join(tempDir(t), 's2v.db')
  // The worker gets half of SHUTDOWN_GRACE_MS.
  const env = { NOTIFY_URL: consumer.url, NOTIFY_SECRET: SECRET, SHUTDOWN_GRACE_MS: '300', NOTIFY_TIMEOUT_MS: '10000' }
  const first = await appOn(t, path, env)
  await seedTask(first.taskStore, { task_id: taskId() })
  await waitUntil('the attempt is under way', () => first.notifications.worker.inFlight === 1)
  const closing = Date.now()
  await first.close()
  const took = Date.now() - closing
  t.ok(took < 1000, `close took ${took} ms, not the consumer's 3 s`)
  const storage = first.notifications.outbox.storage

  const second = await appOn(t, path, env)
  t.not(storage, second.notifications.outbox.storage)
  await waitUntil('delivered', async () => (await second.notifications.outbox.storage.list({ state: 'delivered', limit: 1 })).length === 1, 6000)
  const [delivery] = (await second.inject('/v1/deliveries')).json().items as Array<{ id: string, attempts: unknown[] }>
  t.equal(delivery!.attempts.length, 1, 'the abandoned attempt did not count')
  await consumer.waitFor(2, 5000)
  t.same(consumer.received.map((message) => message.headers['webhook-id']), [delivery!.id, delivery!.id], 'the same id: at-least-once')
})

t.test('without NOTIFY_SECRET one is generated once, logged once (never its value), kept, and served to an admin', async (t) => {
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  const path = join(tempDir(t), 's2v.db')
  const env = { NOTIFY_URL: consumer.url, ADMIN_TOKENS: 'ops:admin-token' }
  const logs = new LogCapture()
  const first = await appOn(t, path, env, logs)
  const generated = logs.lines.filter((line) => typeof line.notify_secret_sha256 === 'string')
  t.equal(generated.length, 1, 'logged when generated')
  t.equal(generated[0]!.level, 40, 'as a warning')

  const auth = { authorization: 'Bearer admin-token' }
  t.equal((await first.inject('/v1/notifications/secret')).statusCode, 401, 'needs a token')
  const served = (await first.inject({ url: '/v1/notifications/secret', headers: auth })).json().operator
  t.equal(served.source, 'generated')
  const secret = served.secrets[0] as string
  t.match(secret, /^whsec_/)
  t.notOk(logs.raw.includes(secret.slice(6)), 'the secret itself never reaches the logs')
  t.equal(generated[0]!.notify_secret_sha256, createHash('sha256').update(secret).digest('hex').slice(0, 12), 'only its fingerprint')
  await seedTask(first.taskStore, { task_id: taskId() })
  const [message] = await consumer.waitFor(1)
  t.ok(new Webhook(secret).verify(message!.body, message!.headers as Record<string, string>), 'it signs')
  await first.close()

  const again = new LogCapture()
  const second = await appOn(t, path, env, again)
  t.equal(again.lines.filter((line) => 'notify_secret_sha256' in line).length, 0, 'not logged again')
  t.same((await second.inject({ url: '/v1/notifications/secret', headers: auth })).json().operator.secrets, [secret], 'the same secret after a restart')

  const configured = await appOn(t, path, { NOTIFY_SECRET: `${SECRET},${secret}`, ADMIN_TOKENS: 'ops:admin-token' })
  t.same((await configured.inject({ url: '/v1/notifications/secret', headers: auth })).json().operator, { source: 'config', secrets: [SECRET, secret] })
})

t.test('no secret is served or rotated by an open deployment (no API_TOKENS, no ADMIN_TOKENS)', async (t) => {
  const app = await appOn(t, join(tempDir(t), 's2v.db'), {})
  for (const [method, url] of [['GET', '/v1/notifications/secret'], ['POST', '/v1/notifications/secret/rotate']] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 403, url)
    t.equal(res.json().code, 'admin_token_required')
    t.match(res.json().message, /set API_TOKENS .* or set NOTIFY_SECRET/, 'the message says what works')
  }
})

t.test('a submit with notify_url hears processing then success from MiniMax\'s pushes, signed, shaped like the lookup', async (t) => {
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  // The reconciler is kept from fetching the provider link: the message says what the status change knew (no link
  // yet), and a link fetched before the lookup below would make the two differ.
  const { url } = await startStack(t, { env: { NOTIFY_ALLOW_PRIVATE: 'true', NOTIFY_SECRET: SECRET, RECONCILE_TICK_MS: '3600000' } })
  const submitted = await postJson(`${url}/v1/video_generation`, submitBody({ notify_url: consumer.url }))
  t.equal(submitted.status, 200)
  const messages = await consumer.waitFor(2)
  const verifier = new Webhook(SECRET)
  const bodies = messages.map((message) => verifier.verify(message.body, message.headers as Record<string, string>) as Record<string, unknown>)
  t.same(bodies.map((body) => body.status), ['processing', 'success'])
  const { body: task } = await getJson(`${url}/v1/tasks/${submitted.body.id}`)
  // The history (events and its size, events_total) is the lookup's, not the message's.
  const { events, events_total: eventsTotal, ...summary } = task
  t.ok(events.length > 0 && eventsTotal === events.length)
  // The signed video links differ by design: a message's lives longer (DOWNLOAD_LINK_NOTIFY_TTL_S) than a lookup's.
  const withoutLinks = ({ video, ...rest }: Record<string, any>) => ({ ...rest, video: video && { ...video, download_url: undefined, download_expires_at: undefined } })
  t.same(withoutLinks(bodies[1]!), withoutLinks(summary), 'the task as the lookup shows it, without the events or their count')
  t.ok(Date.parse((bodies[1] as any).video.download_expires_at) > Date.parse(summary.video.download_expires_at), 'the message\'s link outlives the lookup\'s')
  t.equal(messages[0]!.headers['user-agent'], 's2v-callback-notifier/1')
})
