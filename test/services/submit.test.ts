// Idempotency keys once the first answer said "outcome unknown", or never came (a restart mid-submit).
import t from 'tap'
import Database from 'better-sqlite3'
import { postJson, startStack, submitBody, sqliteDb } from '../helper.js'
import { waitUntil } from '../fixtures/webhook-consumer.js'

t.test('a key whose first answer was "outcome unknown" replays the task once a push resolved it', async (t) => {
  // The fake creates the task, then drops the connection: the create's outcome is unknown to us; its pushes still come.
  const stack = await startStack(t, { behaviour: { createResetConnection: true } })
  const send = () => postJson(`${stack.url}/v1/video_generation`, submitBody(), { 'idempotency-key': 'order-1' })
  const first = await send()
  t.equal(first.body.code, 'submit_outcome_unknown')
  const id = first.body.id as string
  await waitUntil('a push bound the task', async () => (await stack.app.taskStore.queries.byId(id))!.task_id !== null)
  const replay = await send()
  t.equal(replay.status, 200, 'the stale "unknown" is replaced by what is known now')
  t.equal(replay.headers.get('idempotent-replayed'), 'true')
  t.match(replay.body, { id, task_id: (await stack.app.taskStore.queries.byId(id))!.task_id, status: /processing|success/, base_resp: { status_code: 0 } })
  t.equal(stack.fake.tasks.size, 1, 'still one paid generation')
})

t.test('a key whose first request never answered (a restart) is 409 until its task resolves, then replays it', async (t) => {
  const stack = await startStack(t, { behaviour: { createResetConnection: true, pushes: 'none' } })
  const send = (key: string) => postJson(`${stack.url}/v1/video_generation`, submitBody(), { 'idempotency-key': key })
  // As a restart leaves it: the key and its task are on disk, the answer is not.
  const forget = (key: string) => sqliteDb(stack.app).prepare('UPDATE idempotency_keys SET response_status = NULL, response_body = NULL WHERE key = ?').run(key)

  const bound = (await send('bound')).body.id as string
  forget('bound')
  const inProgress = await send('bound')
  t.equal(inProgress.status, 409, 'unresolved: in progress')
  t.match(inProgress.body, { code: 'idempotency_key_in_progress', id: bound })
  const providerTaskId = [...stack.fake.tasks.keys()][0]!
  await stack.app.taskStore.applyUpdate((await stack.app.taskStore.queries.byId(bound))!.seq, providerTaskId, { status: 'processing', providerStatus: 'Processing' }, 'poll')
  const replay = await send('bound')
  t.equal(replay.status, 200, 'bound by a poll: replayed as the create answer')
  t.same(replay.body, { task_id: providerTaskId, id: bound, status: 'processing', base_resp: { status_code: 0, status_msg: 'success' } })

  const failed = (await send('failed')).body.id as string
  forget('failed')
  await stack.app.taskStore.applyUpdate((await stack.app.taskStore.queries.byId(failed))!.seq, null, { status: 'failed', providerStatus: null, error: { code: 'submit_outcome_unknown', message: 'gave up' } }, 'timeout')
  const failure = await send('failed')
  t.equal(failure.status, 502, 'failed before it had a task_id: replayed as the failure')
  t.match(failure.body, { code: 'submit_outcome_unknown', id: failed, task_id: null, status: 'failed', base_resp: { status_code: 1000 } })
  t.equal(failure.headers.get('idempotent-replayed'), 'true')
})

t.test('a task that cannot be written (a locked database) sends nothing and leaves the provider\'s slot free', async (t) => {
  const stack = await startStack(t)
  const create = stack.app.taskStore.create.bind(stack.app.taskStore)
  stack.app.taskStore.create = async () => { throw new Database.SqliteError('database is locked', 'SQLITE_BUSY') }
  const refused = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  t.equal(refused.status, 503)
  t.equal(refused.body.code, 'database_busy')
  t.equal(stack.fake.tasks.size, 0, 'nothing was sent')
  stack.app.taskStore.create = create
  await new Promise((resolve) => setTimeout(resolve, stack.app.submitQueue.pacer('minimax').intervalMs))
  const next = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  t.equal(next.status, 200, 'the next submit goes straight to the provider, not to a queue stuck behind a slot never given back')
})

t.test('a key another replica wrote between our check and our insert is replayed, never a second paid create', async (t) => {
  const stack = await startStack(t)
  const send = () => postJson(`${stack.url}/v1/video_generation`, submitBody(), { 'idempotency-key': 'order-7' })
  const first = await send()
  t.equal(first.status, 200)
  // As another replica would leave it: the key is on disk, but this replica's check ran just before it was written.
  const queries = stack.app.taskStore.queries
  const lookup = queries.idempotencyKey.bind(queries)
  let blind = true
  queries.idempotencyKey = async (scope, key) => {
    if (!blind) return await lookup(scope, key)
    blind = false
    return undefined
  }
  t.teardown(() => { queries.idempotencyKey = lookup })
  const second = await send()
  t.equal(second.status, 200)
  t.equal(second.body.id, first.body.id, 'the same task')
  t.equal(second.headers.get('idempotent-replayed'), 'true')
  t.equal(stack.fake.tasks.size, 1, 'one paid generation')
})
