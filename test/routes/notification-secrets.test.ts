import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { build, seedTask, taskId } from '../helper.js'
import { startWebhookConsumer, type Received } from '../fixtures/webhook-consumer.js'
import type { App } from '../../src/app.js'

const TOKENS = { API_TOKENS: 'team-a:tok-a,team-b:tok-b', ADMIN_TOKENS: 'ops:tok-ops', NOTIFY_ALLOW_PRIVATE: 'true' }
const auth = (token: string) => ({ authorization: `Bearer ${token}` })

async function secretOf (app: App, token: string, rotate = false) {
  const response = await app.inject({ method: rotate ? 'POST' : 'GET', url: `/v1/notifications/secret${rotate ? '/rotate' : ''}`, headers: auth(token) })
  t.equal(response.statusCode, 200)
  return response.json()
}

const verifiedBy = (message: Received, secret: string): boolean => {
  try {
    new Webhook(secret).verify(message.body, message.headers as Record<string, string>)
    return true
  } catch {
    return false
  }
}

t.test('each caller reads only its own secret; an admin also gets the operator\'s', async (t) => {
  const app = await build(t, TOKENS)
  const a = await secretOf(app, 'tok-a')
  t.match(a, { caller: 'team-a', secrets: [/^whsec_/], keys: [{ expires_at: null }] })
  t.notOk('operator' in a, 'a caller never sees the operator\'s secret')
  t.same(await secretOf(app, 'tok-a'), a, 'generated once')
  const b = await secretOf(app, 'tok-b')
  t.equal(b.caller, 'team-b')
  t.not(b.secrets[0], a.secrets[0])
  const ops = await secretOf(app, 'tok-ops')
  t.equal(ops.caller, 'ops')
  t.match(ops.operator, { source: 'generated', secrets: [/^whsec_/] })
  t.not(ops.operator.secrets[0], a.secrets[0])
  t.equal((await app.inject('/v1/notifications/secret')).statusCode, 401)
})

t.test('a task\'s notify_url messages verify with its caller\'s secret only; NOTIFY_URL\'s with the operator\'s; NOTIFY_SECRET with both', async (t) => {
  const own = await startWebhookConsumer()
  const global = await startWebhookConsumer()
  t.teardown(() => own.close())
  t.teardown(() => global.close())
  const app = await build(t, { ...TOKENS, NOTIFY_URL: global.url })
  const [a, b, ops] = [await secretOf(app, 'tok-a'), await secretOf(app, 'tok-b'), await secretOf(app, 'tok-ops')]
  await seedTask(app.taskStore, { task_id: taskId(), caller: 'team-a', notify_url: own.url })
  const [mine] = await own.waitFor(1)
  const [all] = await global.waitFor(1)
  t.ok(verifiedBy(mine!, a.secrets[0]), 'team-a verifies its message')
  t.notOk(verifiedBy(mine!, b.secrets[0]), 'team-b\'s secret does not: team-b cannot forge team-a\'s messages')
  t.notOk(verifiedBy(mine!, ops.operator.secrets[0]), 'nor the generated operator secret')
  t.ok(verifiedBy(all!, ops.operator.secrets[0]), 'the operator verifies NOTIFY_URL\'s')
  t.notOk(verifiedBy(all!, a.secrets[0]))
})

t.test('NOTIFY_SECRET, when set, adds its signature to every message and is readable by admins only', async (t) => {
  const own = await startWebhookConsumer()
  t.teardown(() => own.close())
  const configured = 'whsec_' + Buffer.alloc(32, 7).toString('base64')
  const app = await build(t, { ...TOKENS, NOTIFY_SECRET: configured })
  const a = await secretOf(app, 'tok-a')
  t.notOk(JSON.stringify(a).includes(configured), 'a caller cannot read NOTIFY_SECRET')
  t.same((await secretOf(app, 'tok-ops')).operator, { source: 'config', secrets: [configured] })
  await seedTask(app.taskStore, { task_id: taskId(), caller: 'team-a', notify_url: own.url })
  const [message] = await own.waitFor(1)
  t.ok(verifiedBy(message!, a.secrets[0]))
  t.ok(verifiedBy(message!, configured), 'existing consumers keep verifying')
})

t.test('rotating: the new secret signs at once, the old one beside it for 24 h; only the caller\'s own secret changes', async (t) => {
  const own = await startWebhookConsumer()
  t.teardown(() => own.close())
  const app = await build(t, TOKENS)
  const before = await secretOf(app, 'tok-a')
  const b = await secretOf(app, 'tok-b')
  const started = Date.now()
  const response = await app.inject({ method: 'POST', url: '/v1/notifications/secret/rotate', headers: auth('tok-a') })
  t.equal(response.statusCode, 200)
  const rotated = response.json()
  t.equal(rotated.secrets.length, 2)
  t.equal(rotated.secrets[1], before.secrets[0], 'the old one, second')
  const expires = Date.parse(rotated.keys[1].expires_at)
  t.ok(expires >= started + 24 * 3600_000 && expires <= Date.now() + 24 * 3600_000, 'it stops signing in 24 h')
  t.same(await secretOf(app, 'tok-a'), rotated, 'GET shows the same')
  t.same(await secretOf(app, 'tok-b'), b, 'team-b is untouched')

  await seedTask(app.taskStore, { task_id: taskId(), caller: 'team-a', notify_url: own.url })
  const [message] = await own.waitFor(1)
  t.ok(verifiedBy(message!, rotated.secrets[0]), 'the new secret verifies')
  t.ok(verifiedBy(message!, before.secrets[0]), 'and the old one, during the grace period')
  t.equal((await app.inject({ method: 'POST', url: '/v1/notifications/secret/rotate' })).statusCode, 401)
})
