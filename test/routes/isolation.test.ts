import t, { type Test } from 'tap'
import { build, seedTask, taskId } from '../helper.js'
import { waitUntil } from '../fixtures/webhook-consumer.js'
import type { App } from '../../src/app.js'

// Two callers and an operator. Every task gets a delivery to NOTIFY_URL, which nothing answers: they die fast.
const ENV = {
  API_TOKENS: 'team-a:tok-a,team-b:tok-b',
  ADMIN_TOKENS: 'ops:tok-ops',
  NOTIFY_ALLOW_PRIVATE: 'true',
  NOTIFY_URL: 'http://127.0.0.1:9/hooks',
  NOTIFY_RETRY_SCHEDULE: '0.01'
}
const TOKEN = { a: 'tok-a', b: 'tok-b', ops: 'tok-ops' } as const
type Who = keyof typeof TOKEN

type Seeded = { id: string, task_id: string, seq: number }

/** Per caller: one task still processing and one that failed (a finished task answers refresh and SSE at once). */
async function world (t: Test): Promise<{ app: App, tasks: Record<'a' | 'b', { open: Seeded, done: Seeded }> }> {
  const app = await build(t, ENV)
  const seed = async (caller: string, finished: boolean): Promise<Seeded> => {
    const id = taskId()
    const task = await seedTask(app.taskStore, { task_id: id, caller })
    if (finished) await app.taskStore.applyUpdate(task.seq, id, { status: 'failed', providerStatus: 'Fail', error: { code: '1027', message: 'sensitive' } }, 'callback')
    return { id: task.id, task_id: id, seq: task.seq }
  }
  const tasks = { a: { open: await seed('team-a', false), done: await seed('team-a', true) }, b: { open: await seed('team-b', false), done: await seed('team-b', true) } }
  // 2 tasks × (processing, failed) + 2 × processing: 6 deliveries, all dead.
  await waitUntil('deliveries dead', async () => (await app.notifications.outbox.storage.list({ state: 'failed', limit: 10 })).length === 6)
  return { app, tasks }
}

function as (app: App, who: Who) {
  return async (method: 'GET' | 'POST', url: string, extra: { payload?: object, headers?: Record<string, string> } = {}) => {
    const response = await app.inject({ method, url, headers: { authorization: `Bearer ${TOKEN[who]}`, ...extra.headers }, ...(extra.payload ? { payload: extra.payload } : {}) })
    return { status: response.statusCode, body: response.body ? response.json() : null, headers: response.headers }
  }
}

// What a route answers for an id that exists nowhere, minus the request id: another caller's task must answer the same.
const withoutRequestId = ({ request_id: _ignored, ...rest }: Record<string, unknown>) => rest

// [method, url for a task, expected status for its owner]; every route that names a task.
const TASK_ROUTES = (task: Seeded): Array<[string, 'GET' | 'POST', string, number, Record<string, string>?]> => [
  ['lookup by id', 'GET', `/v1/tasks/${task.id}`, 200],
  ['lookup by task_id', 'GET', `/v1/tasks/${task.task_id}`, 200],
  ['long-poll', 'GET', `/v1/tasks/${task.id}?wait=1&status=processing`, 200],
  ['MiniMax query', 'GET', `/v1/query/video_generation?task_id=${task.task_id}`, 200],
  ['refresh', 'POST', `/v1/tasks/${task.id}/refresh`, 200],
  ['SSE (final status already seen)', 'GET', `/v1/tasks/${task.id}/events`, 204, { 'last-event-id': 'failed' }],
  ['video (not ready)', 'GET', `/v1/tasks/${task.id}/video`, 409],
  ['its deliveries', 'GET', `/v1/deliveries?task=${task.id}`, 200]
]

t.test('another caller\'s task answers 404 on every route, exactly as a task that does not exist', async (t) => {
  const { app, tasks } = await world(t)
  const ghost: Seeded = { id: 'f0f0f0f0-0000-4000-8000-000000000000', task_id: '399999999999999999', seq: 0 }
  for (const [name, method, url, ownerStatus, headers] of TASK_ROUTES(tasks.a.done)) {
    const owner = await as(app, 'a')(method, url, { headers })
    t.equal(owner.status, ownerStatus, `${name}: the owner`)
    const admin = await as(app, 'ops')(method, url, { headers })
    t.equal(admin.status, ownerStatus, `${name}: an admin sees it too`)
    const other = await as(app, 'b')(method, url, { headers })
    // MiniMax's routes refuse with HTTP 200 and base_resp, as MiniMax does; the body's statusCode still says 404.
    const refusal = name.startsWith('MiniMax') ? 200 : 404
    t.equal(other.status, refusal, `${name}: another caller`)
    t.equal(other.body.statusCode, 404, `${name}: another caller, not found`)
    // The same route for an id nobody has: the answer differs only in the id it names.
    const ghostUrl = url.replaceAll(tasks.a.done.id, ghost.id).replaceAll(tasks.a.done.task_id, ghost.task_id)
    const missing = await as(app, 'b')(method, ghostUrl, { headers })
    t.equal(missing.status, refusal)
    const named = JSON.stringify(withoutRequestId(other.body)).replaceAll(tasks.a.done.id, ghost.id).replaceAll(tasks.a.done.task_id, ghost.task_id)
    t.equal(named, JSON.stringify(withoutRequestId(missing.body)), `${name}: the body says nothing more than "not found"`)
    t.same(Object.keys(other.headers).sort(), Object.keys(missing.headers).sort(), `${name}: nor do the headers`)
  }
  // A still-running task: its stream would stay open for the owner, so only the refusal is checked here.
  t.equal((await as(app, 'b')('GET', `/v1/tasks/${tasks.a.open.id}/events`)).status, 404)
})

t.test('lists hold only the caller\'s own tasks; an admin\'s hold everyone\'s', async (t) => {
  const { app, tasks } = await world(t)
  const ids = async (who: Who, url: string) => (await as(app, who)('GET', url)).body.items.map((item: { id: string }) => item.id)
  t.same(await ids('a', '/v1/tasks'), [tasks.a.done.id, tasks.a.open.id])
  t.same(await ids('b', '/v1/tasks'), [tasks.b.done.id, tasks.b.open.id])
  t.same(await ids('a', '/v1/tasks?status=failed'), [tasks.a.done.id])
  t.same(await ids('ops', '/v1/tasks'), [tasks.b.done.id, tasks.b.open.id, tasks.a.done.id, tasks.a.open.id])
  t.same(await ids('ops', '/v1/tasks?status=processing'), [tasks.b.open.id, tasks.a.open.id])

  // Pages of one caller skip the other's tasks in between.
  const first = (await as(app, 'a')('GET', '/v1/tasks?limit=1')).body
  t.same(first.items.map((item: { id: string }) => item.id), [tasks.a.done.id])
  const second = (await as(app, 'a')('GET', `/v1/tasks?limit=1&cursor=${first.next_cursor}`)).body
  t.same(second.items.map((item: { id: string }) => item.id), [tasks.a.open.id])
  t.equal(second.next_cursor, null, 'no page of team-b\'s tasks follows')

  const callers = (await as(app, 'ops')('GET', '/v1/tasks')).body.items.map((item: { caller: string }) => item.caller)
  t.same(callers, ['team-b', 'team-b', 'team-a', 'team-a'], 'lookups show whose task it is')
})

t.test('deliveries: listed, read and replayed only by the task\'s caller or an admin', async (t) => {
  const { app, tasks } = await world(t)
  const tasksOf = async (who: Who, url: string) => (await as(app, who)('GET', url)).body.items.map((item: { task: string }) => item.task)
  const ofA = [tasks.a.done.id, tasks.a.done.id, tasks.a.open.id]
  const ofB = [tasks.b.done.id, tasks.b.done.id, tasks.b.open.id]
  t.same(await tasksOf('a', '/v1/deliveries'), ofA)
  t.same(await tasksOf('b', '/v1/deliveries?state=failed'), ofB)
  t.same(await tasksOf('a', '/v1/deliveries?state=delivered'), [])
  t.same(await tasksOf('ops', '/v1/deliveries'), [...ofB, ...ofA])
  const first = (await as(app, 'a')('GET', '/v1/deliveries?limit=2')).body
  const rest = (await as(app, 'a')('GET', `/v1/deliveries?limit=2&cursor=${first.next_cursor}`)).body
  t.same(rest.items.map((item: { task: string }) => item.task), [tasks.a.open.id])
  t.equal(rest.next_cursor, null)

  const [delivery] = (await as(app, 'a')('GET', `/v1/deliveries?task=${tasks.a.open.id}`)).body.items
  t.equal((await as(app, 'a')('GET', `/v1/deliveries/${delivery.id}`)).status, 200)
  t.equal((await as(app, 'ops')('GET', `/v1/deliveries/${delivery.id}`)).status, 200)
  const read = await as(app, 'b')('GET', `/v1/deliveries/${delivery.id}`)
  t.same([read.status, read.body.code, read.body.message], [404, 'not_found', `delivery ${delivery.id} not found`])
  const replay = await as(app, 'b')('POST', `/v1/deliveries/${delivery.id}/retry`)
  t.same([replay.status, replay.body.code, replay.body.message], [404, 'not_found', `delivery ${delivery.id} not found`])
  t.equal((await app.notifications.outbox.storage.byId(delivery.id))!.state, 'failed', 'team-b\'s replay did nothing')
  t.equal((await as(app, 'a')('POST', `/v1/deliveries/${delivery.id}/retry`)).status, 202, 'the owner replays it')

  // A bulk replay touches only the caller's own dead letters; an admin's touches everyone's.
  const range = { since: new Date(Date.now() - 60_000).toISOString() }
  const byB = await as(app, 'b')('POST', '/v1/deliveries/retry', { payload: range })
  t.same(byB.body, { retried: 3, skipped: 0 })
  const failedOfA = (await app.notifications.outbox.storage.list({ caller: 'team-a', state: 'failed', limit: 10 }))
  t.equal(failedOfA.length, 2, 'team-a\'s dead letters untouched by team-b (bar the one team-a replayed)')
  await waitUntil('dead again', async () => (await app.notifications.outbox.storage.list({ state: 'failed', limit: 10 })).length === 6)
  t.same((await as(app, 'ops')('POST', '/v1/deliveries/retry', { payload: range })).body, { retried: 6, skipped: 0 })
})
