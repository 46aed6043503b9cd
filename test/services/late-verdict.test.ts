// Issue 8 §1: the provider's verdict beats our own give-up (timeout, submit_outcome_unknown), by push or by a late poll,
// with file_id, link, archive and a notification; and a finished task is never polled again.
import t from 'tap'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrate.js'
import { TasksRepository } from '../../src/db/tasks-repository.js'
import { SqliteTaskStorage } from '../../src/db/sqlite-task-storage.js'
import { ProviderError } from '../../src/providers/provider-error.js'
import type { ProviderTaskState, VideoProvider } from '../../src/providers/provider.js'
import { TaskStore } from '../../src/services/task-store.js'
import { startWebhookConsumer } from '../fixtures/webhook-consumer.js'
import { getJson, postJson, seedTask, standaloneReconciler, startStack, submitBody, taskId, tempDir, type Stack, waitForTask } from '../helper.js'

// Small timings: the defaults are minutes and hours.
const FAST = {
  RECONCILE_TICK_MS: '20',
  RECONCILE_AFTER_MS: '150',
  RECONCILE_BACKOFF_MS: '100',
  RECONCILE_BACKOFF_MAX_MS: '400',
  MINIMAX_POLL_BUDGET: '100',
  TASK_DEADLINE_MS: '1000',
  LATE_RESULT_POLL_MS: '600000'
}
// The fake keeps every task running (no pushes, no progress) until the test completes it.
const STALLED = { pushes: 'none' as const, pushDelayMs: 600_000 }

/** When we gave up on the task: its timeout event, as the lookup shows it. */
const gaveUpAt = (task: any): number => Date.parse(task.events.find((event: any) => event.source === 'timeout').at)

/** The queries the fake heard after `from` and before `to` (ms since the epoch), however late the test looks. */
const queriesBetween = (stack: Stack, from: number, to: number): number =>
  stack.fake.requests.filter((r) => r.path === '/v1/query/video_generation' && r.at > from && r.at < to).length

/** What MiniMax would push on the task's callback URL (the fake recorded it at create). */
async function pushAsMiniMax (stack: Stack, providerTaskId: string, body: Record<string, unknown>) {
  const url = stack.fake.tasks.get(providerTaskId)!.callback_url!
  return postJson(url, { task_id: providerTaskId, ...body })
}

t.test('a task we timed out, then pushed as success: applied, with file_id, link, archive and a notification', async (t) => {
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  const stack = await startStack(t, {
    env: { ...FAST, VIDEO_DIR: join(tempDir(t), 'videos'), NOTIFY_URL: consumer.url, NOTIFY_ALLOW_PRIVATE: 'true' },
    behaviour: STALLED
  })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  t.equal(body.status, 'processing')
  const failed = await waitForTask(stack, body.id, (task) => task.status === 'failed')
  t.same(failed.error, { code: 'timeout', message: failed.error.message, provisional: true }, 'our own give-up is marked provisional')
  t.equal(failed.events.at(-1).source, 'timeout')

  stack.fake.completeTask(body.task_id)
  const fileId = stack.fake.tasks.get(body.task_id)!.file_id!
  const late = await pushAsMiniMax(stack, body.task_id, { status: 'success', file_id: fileId, base_resp: { status_code: 0, status_msg: 'success' } })
  t.equal(late.status, 200)

  const done = await waitForTask(stack, body.id, (task) => task.video?.archive?.state === 'stored')
  t.match(done, { status: 'success', file_id: fileId, error: null, video: { url: /\/download\//, archive: { state: 'stored', bytes: Number } } })
  t.match(done.events.at(-1), { source: 'callback', status: 'success', outcome: 'applied' }, 'the late push applied, not a conflict')
  t.equal((await fetch(`${stack.url}/v1/tasks/${body.id}/video`)).status, 200, 'the archived video is served')

  const received = await consumer.waitFor(3)
  t.same(received.map((message) => JSON.parse(message.body).status), ['processing', 'failed', 'success'], 'the caller is told of the success too')
  t.match(JSON.parse(received[2]!.body), { id: body.id, status: 'success', file_id: fileId, error: null })

  const conflict = await pushAsMiniMax(stack, body.task_id, { status: 'failed', base_resp: { status_code: 1027, status_msg: 'x' } })
  t.equal(conflict.status, 200)
  const after = (await getJson(`${stack.url}/v1/tasks/${body.id}`)).body
  t.equal(after.status, 'success', 'the provider\'s success is final')
  t.equal(after.events.at(-1).outcome, 'conflict')
})

t.test('an event stream stays open after our own failure and ends with the provider\'s late verdict', async (t) => {
  const stack = await startStack(t, { env: FAST, behaviour: STALLED })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  const res = await fetch(`${stack.url}/v1/tasks/${body.id}/events`)
  const reader = res.body!.getReader()
  let text = ''
  const ids = () => [...text.matchAll(/^id: (\w+)$/gm)].map((match) => match[1])
  const readUntil = async (done: () => boolean) => {
    while (!done()) {
      const { value, done: ended } = await reader.read()
      if (ended) return true
      text += Buffer.from(value).toString()
    }
    return false
  }
  await readUntil(() => ids().includes('failed'))
  t.same(ids(), ['processing', 'failed'], 'our timeout is streamed')
  const again = await fetch(`${stack.url}/v1/tasks/${body.id}/events`, { headers: { 'last-event-id': 'failed' } })
  t.equal(again.status, 200, 'a reconnect after a provisional failure is not told "finished" (204)')
  await again.body!.cancel()

  stack.fake.completeTask(body.task_id)
  await pushAsMiniMax(stack, body.task_id, { status: 'success', file_id: stack.fake.tasks.get(body.task_id)!.file_id })
  const ended = await readUntil(() => false)
  t.ok(ended, 'the stream ended after the final verdict')
  t.same(ids(), ['processing', 'failed', 'success'])
  t.equal((await fetch(`${stack.url}/v1/tasks/${body.id}/events`, { headers: { 'last-event-id': 'success' } })).status, 204)
})

t.test('after our timeout the reconciler keeps asking slowly, and a late success from a poll applies', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, LATE_RESULT_POLL_MS: '1000' }, behaviour: STALLED })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  const failed = await waitForTask(stack, body.id, (task) => task.status === 'failed')
  const row = (await stack.app.taskStore.queries.byId(body.id))!
  const wait = Date.parse(row.next_poll_at!) - Date.parse(row.updated_at)
  t.ok(wait >= 900 && wait <= 1100, `the next poll is LATE_RESULT_POLL_MS after the give-up (${wait} ms), not the usual backoff`)

  // Judged by when the fake heard each query, so a slow machine's late start of this wait cannot blur the window.
  const due = Date.parse(row.next_poll_at!)
  await sleep(Math.max(0, due - Date.now() - 100))
  t.equal(queriesBetween(stack, gaveUpAt(failed), due), 0, 'no poll before LATE_RESULT_POLL_MS')
  stack.fake.completeTask(body.task_id)
  const done = await waitForTask(stack, body.id, (task) => task.video?.url != null, 4000) // the provider link fetched, not just the signed one
  t.match(done, { status: 'success', error: null, file_id: stack.fake.tasks.get(body.task_id)!.file_id })
  t.ok(done.events.some((event: any) => event.source === 'poll' && event.status === 'success' && event.outcome === 'applied'), 'applied from a poll')

  t.equal((await stack.app.taskStore.queries.byId(body.id))!.next_poll_at, null, 'finished: nothing scheduled')
  const settled = stack.fake.requests.length
  await sleep(400)
  t.equal(stack.fake.requests.length, settled, 'a finished task is never polled again')
})

t.test('late polling ends with LATE_RESULT_WINDOW_MS; a still-running task then stays failed', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, LATE_RESULT_POLL_MS: '1000', LATE_RESULT_WINDOW_MS: '1500' }, behaviour: STALLED })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  const failed = await waitForTask(stack, body.id, (task) => task.status === 'failed')
  const late = (): number => queriesBetween(stack, gaveUpAt(failed), Infinity)
  await stack.fake.waitFor(() => late() >= 2, 3000)
  await sleep(600)
  t.equal(late(), 2, 'one late poll after 1 s, the last at the window\'s end (1.5 s), then none')
  const row = (await stack.app.taskStore.queries.byId(body.id))!
  t.equal(row.next_poll_at, null)
  t.match(row, { status: 'failed', error_code: 'timeout', error_provisional: 1 }, 'still provisional: a push would still resolve it')

  const off = await startStack(t, { env: { ...FAST, LATE_RESULT_WINDOW_MS: '0' }, behaviour: STALLED })
  const other = (await postJson(`${off.url}/v1/video_generation`, submitBody())).body
  await waitForTask(off, other.id, (task) => task.status === 'failed')
  t.equal((await off.app.taskStore.queries.byId(other.id))!.next_poll_at, null, 'LATE_RESULT_WINDOW_MS=0: no late polls')
})

t.test('a create whose outcome stayed unknown keeps a working callback URL: a late push resolves it with MiniMax\'s own code', async (t) => {
  const stack = await startStack(t, {
    env: { ...FAST, MINIMAX_CREATE_TIMEOUT_MS: '1000', SUBMITTING_TIMEOUT_MS: '1000' },
    behaviour: { ...STALLED, createDelayMs: 2000 }
  })
  const submitted = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  t.equal(submitted.status, 504)
  t.equal(submitted.body.code, 'submit_outcome_unknown')
  const failed = await waitForTask(stack, submitted.body.id, (task) => task.status === 'failed')
  t.match(failed, { task_id: null, error: { code: 'submit_outcome_unknown', provisional: true } })

  const [providerTaskId] = [...stack.fake.tasks.keys()]
  const late = await pushAsMiniMax(stack, providerTaskId!, { status: 'Fail', base_resp: { status_code: 1026, status_msg: 'input sensitive' } })
  t.equal(late.status, 200)
  const resolved = (await getJson(`${stack.url}/v1/tasks/${submitted.body.id}`)).body
  t.match(resolved, { task_id: providerTaskId, status: 'failed', error: { code: '1026', message: 'input sensitive' } })
  t.notOk('provisional' in resolved.error, 'no longer provisional')
  t.equal(resolved.events.at(-1).outcome, 'applied', 'the provider\'s verdict replaced ours')
  t.equal((await stack.app.taskStore.queries.byId(submitted.body.id))!.next_poll_at, null, 'the provider\'s failure is final: no late polls')

  const after = await pushAsMiniMax(stack, providerTaskId!, { status: 'success', file_id: '1' })
  t.equal(after.status, 200)
  const final = (await getJson(`${stack.url}/v1/tasks/${submitted.body.id}`)).body
  t.equal(final.status, 'failed')
  t.equal(final.events.at(-1).outcome, 'conflict', 'a provider\'s verdict stays final')
})

// The reconciler on its own, with a provider whose answers the test controls.
function harness (t: { teardown: (fn: () => unknown) => void }) {
  const db = openDatabase(join(tempDir(t), 's2v.db'), { synchronous: 'NORMAL' })
  t.teardown(() => db.close())
  migrate(db)
  const store = new TaskStore(new SqliteTaskStorage(new TasksRepository(db)))
  const calls: string[] = []
  let onQuery: (taskId: string) => Promise<ProviderTaskState> = async () => ({ providerStatus: 'Processing', fileId: null, error: null, video: null, traceId: null })
  const provider: VideoProvider = {
    name: 'minimax',
    pushesStatus: true,
    submit: async () => { throw new Error('not used') },
    query: async (id) => { calls.push(`query ${id}`); return onQuery(id) },
    videoLink: async (id) => { calls.push(`link ${id}`); return { url: 'https://cdn.example.com/v.mp4', expiresAt: new Date(Date.now() + 3600_000).toISOString(), width: null, height: null } }
  }
  const reconciler = standaloneReconciler(store, provider, { afterNewsMs: 1000, backoffMs: 1000, backoffMaxMs: 5000, providerRequestTimeoutMs: 10_000 })
  const due = async (seq: number) => await store.pollAt(seq, new Date(Date.now() - 1000).toISOString())
  return { store, calls, reconciler, due, setQuery: (fn: typeof onQuery) => { onQuery = fn } }
}

t.test('a poll that fails while a terminal push commits does not re-arm the finished task', async (t) => {
  const { store, calls, reconciler, due, setQuery } = harness(t)
  const failedTask = await seedTask(store, { task_id: taskId() })
  const succeededTask = await seedTask(store, { task_id: taskId() })
  const providerIds = new Map([[failedTask.seq, (await store.queries.bySeq(failedTask.seq))!.task_id!], [succeededTask.seq, (await store.queries.bySeq(succeededTask.seq))!.task_id!]])
  setQuery(async (id) => {
    // While the question is out, the task's final push arrives and commits; then the question fails.
    const seq = [...providerIds].find(([, providerId]) => providerId === id)![0]
    if (seq === failedTask.seq) await store.applyUpdate(seq, id, { status: 'failed', providerStatus: 'Fail', error: { code: '1027', message: 'x' } }, 'callback')
    else await store.applyUpdate(seq, id, { status: 'success', providerStatus: 'Success', fileId: 'f1' }, 'callback')
    throw new ProviderError('http', 'HTTP 503', { httpStatus: 503 })
  })
  await due(failedTask.seq)
  await due(succeededTask.seq)
  await reconciler.runOnce()
  t.equal(calls.filter((call) => call.startsWith('query')).length, 2)
  t.equal((await store.queries.bySeq(failedTask.seq))!.next_poll_at, null, 'the failed task is not re-armed by the stale poll')
  const success = (await store.queries.bySeq(succeededTask.seq))!
  t.ok(success.next_poll_at !== null && Date.parse(success.next_poll_at) <= Date.now(), 'the success keeps its schedule for the video link, not a backoff')

  await reconciler.runOnce()
  t.same(calls.slice(2), [`link ${providerIds.get(succeededTask.seq)}`], 'only the link is fetched')
  t.equal((await store.queries.bySeq(succeededTask.seq))!.next_poll_at, null)
  for (let i = 0; i < 3; i++) await reconciler.runOnce(Date.now() + (i + 1) * 86_400_000)
  t.equal(calls.length, 3, 'finished tasks are never polled again, however long we wait')
})

t.test('refresh asks the provider about our own failure, never about the provider\'s', async (t) => {
  const { store, calls, reconciler } = harness(t)
  const ours = await seedTask(store, { task_id: taskId() })
  await store.applyUpdate(ours.seq, null, { status: 'failed', providerStatus: null, error: { code: 'timeout', message: 'x', provisional: true } }, 'timeout')
  const theirs = await seedTask(store, { task_id: taskId() })
  await store.applyUpdate(theirs.seq, null, { status: 'failed', providerStatus: 'Fail', error: { code: '1027', message: 'x' } }, 'callback')

  t.equal((await reconciler.pollNow((await store.queries.bySeq(theirs.seq))!)).status, 'failed')
  t.equal(calls.length, 0, 'the provider\'s failure is final: no call')
  const stillRunning = await reconciler.pollNow((await store.queries.bySeq(ours.seq))!)
  t.same(calls, [`query ${stillRunning.task_id}`], 'our own failure is worth a question')
  t.match(stillRunning, { status: 'failed', error_provisional: 1 }, '"Processing" keeps it failed')
  const next = Date.parse(stillRunning.next_poll_at!) - Date.now()
  t.ok(next > 3_500_000 && next <= 3_600_000, 'and the next late poll is an hour away')
})
