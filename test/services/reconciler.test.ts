// The reconciler against the fake providers: lost pushes, forged pushes, stuck submits, deadlines, budgets, restarts.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../../src/app.js'
import { getJson, postJson, seedTask, startStack, submitBody, taskId, type Stack, queries, waitForTask } from '../helper.js'
import { rawServer } from '../providers/helpers.js'

// Small timings so the safety net acts within a test's patience; the defaults are minutes.
const FAST = {
  RECONCILE_TICK_MS: '20',
  RECONCILE_AFTER_MS: '150',
  RECONCILE_BACKOFF_MS: '100',
  RECONCILE_BACKOFF_MAX_MS: '400',
  MODELLIX_POLL_MS: '30',
  MODELLIX_POLL_MAX_MS: '100',
  MINIMAX_POLL_BUDGET: '100'
}

const retrieves = (stack: Stack) => stack.fake.requests.filter((r) => r.path === '/v1/files/retrieve').length

t.test('with every push dropped, tasks still reach their true status through polling, with their video link', async (t) => {
  const stack = await startStack(t, { env: FAST, behaviour: { pushes: 'none' } })
  const ids = []
  for (let i = 0; i < 3; i++) ids.push((await postJson(`${stack.url}/v1/video_generation`, submitBody())).body.id)
  stack.fake.set({ finalStatus: 'failed', failureCode: 1027 })
  const failedId = (await postJson(`${stack.url}/v1/video_generation`, submitBody())).body.id

  for (const id of ids) {
    const task = await waitForTask(stack, id, (task) => Boolean(task.video?.url))
    t.equal(task.status, 'success')
    t.ok(task.events.some((event: any) => event.source === 'poll' && event.status === 'success' && event.outcome === 'applied'), 'success came from a poll')
    t.match(task.video, { url: /\/download\/\d+\.mp4\?Expires=/, expires_at: String })
    t.ok(Date.parse(task.video.expires_at) > Date.now() + 8 * 3600_000, 'expiry read from the URL, minus a margin')
  }
  const failed = await waitForTask(stack, failedId, (task) => task.status !== 'processing')
  t.match(failed, { status: 'failed', error: { code: '1027' }, video: null })
  t.equal(stack.fake.pushes.length, 0, 'no push was ever sent')
})

t.test('with pushes lost half-way, the poll finishes the job', async (t) => {
  // The first push a little after the create's answer, so the history's order below is the flow's, not a race.
  const stack = await startStack(t, { env: FAST, behaviour: { pushes: 'half', pushDelayMs: 100 } })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  const task = await waitForTask(stack, body.id, (task) => task.status === 'success')
  t.same(task.events.map((event: any) => `${event.source}:${event.status}`).slice(0, 3), ['submit:null', 'submit:processing', 'callback:processing'])
  t.ok(task.events.some((event: any) => event.source === 'poll' && event.status === 'success'))
})

t.test('a forged push triggers at most one poll and never changes a status by itself', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, RECONCILE_AFTER_MS: '600000', RECONCILE_BACKOFF_MS: '60000' }, behaviour: { pushes: 'half' } })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  await waitForTask(stack, body.id, (task) => task.provider_status === 'processing')
  await sleep(100)
  t.equal(queries(stack), 0, 'no poll yet: the task is not quiet for long enough')

  // The forger claims failure; MiniMax itself says the task is still running.
  for (let i = 0; i < 20; i++) {
    const forged = await postJson(`${stack.url}/get_callback`, { task_id: body.task_id, status: 'failed' })
    t.equal(forged.status, 401)
  }
  await stack.fake.waitFor(() => queries(stack) >= 1)
  await sleep(200)
  t.equal(queries(stack), 1, 'twenty forgeries, one poll')
  const task = (await getJson(`${stack.url}/v1/tasks/${body.id}`)).body
  const truth = stack.fake.tasks.get(body.task_id)!.status === 'Success' ? 'success' : 'processing'
  t.equal(task.status, truth, 'the task has what MiniMax says, not what the forger said')
  t.notOk(task.events.some((event: any) => event.status === 'failed'), 'the forged "failed" applied nothing')
  t.equal(task.events.filter((event: any) => event.outcome === 'refused').length, 0, 'and wrote nothing to the history')
})

t.test('a submit whose outcome stayed unknown is failed after its deadline', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, MINIMAX_CREATE_TIMEOUT_MS: '1000', SUBMITTING_TIMEOUT_MS: '1000' }, behaviour: { createHttpStatus: 503 } })
  // Before the submit: the deadline counts from the create, which goes out during it (a busy machine can take
  // longer than the test's slack to answer the submit).
  const started = Date.now()
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  t.equal(body.status, 'submitting')
  const task = await waitForTask(stack, body.id, (task) => task.status === 'failed', 6000)
  t.equal(task.error.code, 'submit_outcome_unknown')
  t.ok(Date.now() - started >= 1500, 'not before the deadline (twice the create timeout at least)')
  t.equal(queries(stack), 0, 'nothing to poll without a task_id')
})

t.test('a task that never finishes is failed with a timeout after one last poll; query errors back off', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, TASK_DEADLINE_MS: '1500' } })
  // A task MiniMax does not know: every query answers 2013, so it never finishes.
  const ghost = await seedTask(stack.app.taskStore, { task_id: taskId() })
  await sleep(1000)
  const during = queries(stack)
  t.ok(during >= 2 && during <= 6, `errors back off instead of hammering: ${during} queries in 1 s with 20 ms ticks`)
  const task = await waitForTask(stack, ghost.id, (task) => task.status === 'failed', 4000)
  t.equal(task.error.code, 'timeout')
  t.equal(task.events.at(-1).source, 'timeout')
})

t.test('the reconciler never exceeds its call budget, and shares it between tasks', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, RECONCILE_AFTER_MS: '0', MINIMAX_POLL_BUDGET: '5' } })
  // Eight quiet tasks, all due at once.
  const submitted = await Promise.all(Array.from({ length: 8 }, async () => await seedTask(stack.app.taskStore, { task_id: taskId() })))
  const calls = (): number => queries(stack) + retrieves(stack)
  // The five polls run one after another; once they are all in, the rest of the window must bring no sixth.
  await stack.fake.waitFor(() => calls() >= 5)
  await sleep(400)
  const polled = stack.fake.requests.filter((r) => r.path === '/v1/query/video_generation')
  t.equal(polled.length + retrieves(stack), 5, 'exactly the budget of 5 calls in the first minute')
  t.equal(new Set(polled.map((r) => r.query)).size, 5, 'five different tasks, not one task five times')

  const refreshed = await postJson(`${stack.url}/v1/tasks/${submitted[7]!.id}/refresh`, {})
  t.equal(refreshed.status, 429, 'a forced refresh respects the budget too')
  t.equal(refreshed.body.code, 'poll_budget_exhausted')
})

t.test('POST /v1/tasks/:id/refresh polls now', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, RECONCILE_AFTER_MS: '600000' }, behaviour: { pushes: 'none' } })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  await stack.fake.waitFor(() => stack.fake.tasks.get(body.task_id)?.status === 'Success')
  t.equal((await getJson(`${stack.url}/v1/tasks/${body.id}`)).body.status, 'processing')
  const refreshed = await postJson(`${stack.url}/v1/tasks/${body.id}/refresh`, {})
  t.equal(refreshed.status, 200)
  t.equal(refreshed.body.status, 'success')
  t.equal((await postJson(`${stack.url}/v1/tasks/nope/refresh`, {})).status, 404)
})

t.test('an expired download URL is refreshed on lookup; /video redirects to a fresh one', async (t) => {
  const stack = await startStack(t, { env: FAST })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  const done = await waitForTask(stack, body.id, (task) => Boolean(task.video?.url))
  const before = retrieves(stack)
  await stack.app.taskStore.expireVideoLink((await stack.app.taskStore.queries.byId(body.id))!.seq)
  const looked = (await getJson(`${stack.url}/v1/tasks/${body.id}`)).body
  t.equal(retrieves(stack), before + 1, 'one file look-up')
  t.ok(Date.parse(looked.video.expires_at) > Date.now(), 'fresh expiry')
  t.match(looked.video.url, /\/download\//)
  t.equal(done.video.archive, null, 'no archive without VIDEO_DIR')

  const video = await fetch(`${stack.url}/v1/tasks/${body.id}/video`, { redirect: 'manual' })
  t.equal(video.status, 302)
  t.equal(video.headers.get('cache-control'), 'private, no-store', 'a signed link is not kept by any cache')
  t.equal(video.headers.get('location'), looked.video.url)
  const notReady = await seedTask(stack.app.taskStore, { task_id: taskId() })
  t.equal((await fetch(`${stack.url}/v1/tasks/${notReady.id}/video`)).status, 409)
})

t.test('a restart in the middle of polling loses nothing', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, RECONCILE_AFTER_MS: '300' }, behaviour: { pushes: 'none', pushDelayMs: 200 } })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  await stack.app.close()
  // A new process on the same database: the schedule is in the table, not in memory.
  const again = await buildApp(stack.config)
  t.teardown(() => again.close())
  await again.ready()
  const deadline = Date.now() + 5000
  let task = (await again.taskStore.queries.byId(body.id))!
  while (task.video_url === null && Date.now() < deadline) {
    await sleep(30)
    task = (await again.taskStore.queries.byId(body.id))!
  }
  t.equal(task.status, 'success')
  t.ok(task.video_url, 'and its video link')
})

t.test('a Modellix task goes from submit to success with its video, by polling alone', async (t) => {
  const stack = await startStack(t, { env: FAST })
  const announced: Array<string | null> = []
  stack.app.taskStore.events.on('status', ({ task }) => { if (task.status === 'success') announced.push(task.video_url) })
  const res = await postJson(`${stack.url}/v1/video_generation`, submitBody({ provider: 'modellix', prompt_optimizer: false }))
  t.equal(res.status, 200)
  t.match(res.body, { task_id: /^task-/, status: 'processing' })
  t.same(stack.modellix.tasks.get(res.body.task_id)?.body.subject_reference_images, ['https://example.com/face.jpg'], 'translated to Modellix\'s body')
  t.equal(stack.fake.challenges.length, 0, 'no callback URL: Modellix has none')
  const task = await waitForTask(stack, res.body.id, (task) => task.status === 'success')
  t.equal(task.provider, 'modellix')
  t.match(task.video, { url: /\/files\/.*\.mp4/, expires_at: String })
  t.match(announced, [/\/files\/.*\.mp4/], 'the success commits with its link: nobody sees it without one')
  const asked = (): number => stack.modellix.requests.filter((r) => r.path === `/api/v1/tasks/${res.body.task_id}`).length
  const askedAtSuccess = asked()
  await sleep(200) // ten reconciler ticks
  t.equal(asked(), askedAtSuccess, 'and Modellix is not asked again for a link it already gave')

  stack.modellix.set({ submitHttpStatus: 402 })
  const broke = await postJson(`${stack.url}/v1/video_generation`, submitBody({ provider: 'modellix' }))
  t.equal(broke.status, 402)
  t.equal(broke.body.code, 'insufficient_balance')
})

t.test('query errors (1002, HTTP 5xx, timeouts) back off instead of hammering', async (t) => {
  // A MiniMax whose query endpoint only ever fails, each way in turn.
  const answers = [
    (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"base_resp":{"status_code":1002,"status_msg":"rate limit exceeded"}}'),
    (res: import('node:http').ServerResponse) => res.writeHead(503).end(),
    (_res: import('node:http').ServerResponse) => {} // never answers: a timeout
  ]
  let queriesSeen = 0
  const broken = await rawServer(t, (req, res) => {
    if (req.url?.startsWith('/v1/query/')) answers[queriesSeen++ % answers.length]!(res)
    else res.writeHead(404).end()
  })
  const stack = await startStack(t, { env: { ...FAST, MINIMAX_BASE_URL: broken, PROVIDER_REQUEST_TIMEOUT_MS: '100' } })
  const task = await seedTask(stack.app.taskStore, { task_id: taskId() })
  await sleep(1500)
  // 20 ms ticks would allow ~75 polls; doubling from 100 ms (capped at 400 ms) allows about 6.
  t.ok(queriesSeen >= 3 && queriesSeen <= 8, `${queriesSeen} queries in 1.5 s`)
  const row = (await stack.app.taskStore.queries.byId(task.id))!
  t.equal(row.status, 'processing', 'a failing question changes no status')
  t.ok(row.poll_attempts >= 3, `backoff grew (${row.poll_attempts} attempts)`)
})
