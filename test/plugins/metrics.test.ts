// GET /metrics: what a flow against the fake MiniMax counts, route templates instead of tokens, auth, and METRICS_PORT.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildMetricsServer } from '../../src/metrics-server.js'
import type { TaskEventMap } from '../../src/services/task-events.js'
import { build, freePort, getJson, LogCapture, postJson, seedTask, startStack, submitBody, taskId, tempDir, sqliteDb } from '../helper.js'

/** The value of one sample, e.g. sample(text, 's2v_callback_pushes_total', { outcome: 'applied' }); undefined when absent. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.keys(found).length === Object.keys(labels).length && Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3])
  }
  return undefined
}

const scrape = async (app: Awaited<ReturnType<typeof build>>, headers: Record<string, string> = {}) => {
  const res = await app.inject({ url: '/metrics', headers })
  return { status: res.statusCode, type: res.headers['content-type'], text: res.body, headers: res.headers }
}

t.test('a submit, pushes, a challenge and a lookup are counted, labelled by route template', async (t) => {
  const { app, url, fake } = await startStack(t)
  const submitted = await postJson(`${url}/v1/video_generation`, submitBody())
  t.equal(submitted.status, 200)
  const id = submitted.body.id as string
  const providerTaskId = submitted.body.task_id as string
  await fake.waitFor(() => fake.pushes.filter((push) => push.statusCode !== null).length === 2)
  const callbackUrl = fake.tasks.get(providerTaskId)!.callback_url!
  const token = callbackUrl.split('/').at(-1)!

  const duplicate = await postJson(callbackUrl, { task_id: providerTaskId, status: 'success', file_id: fake.tasks.get(providerTaskId)!.file_id })
  t.equal(duplicate.status, 200, 'a repeated success is a duplicate')
  const refused = await postJson(`${url}/get_callback`, { task_id: providerTaskId, status: 'failed' })
  t.equal(refused.status, 401, 'a push on the bare path is refused')
  const challenge = await postJson(callbackUrl, { challenge: 'c-1' })
  t.same(challenge.body, { challenge: 'c-1' })
  const lookup = await getJson(`${url}/v1/tasks/${id}`)
  t.equal(lookup.body.status, 'success')

  const { status, type, text } = await scrape(app)
  t.equal(status, 200)
  t.equal(type, 'text/plain; version=0.0.4; charset=utf-8')

  t.equal(sample(text, 's2v_submits_total', { outcome: 'created', code: '' }), 1, 'one submit, created')
  t.equal(fake.challenges.filter((c) => c.ok).length, 1, 'the fake sent one challenge during the create')
  t.equal(sample(text, 's2v_callback_challenges_total'), 2, 'the fake\'s challenge and ours')

  // Every push is in the task's history with what it did: the counters must say the same.
  const byOutcome = new Map<string, number>()
  for (const event of lookup.body.events as Array<{ source: string, outcome: string }>) {
    if (event.source === 'callback') byOutcome.set(event.outcome, (byOutcome.get(event.outcome) ?? 0) + 1)
  }
  t.notOk(byOutcome.has('refused'), 'a refused push writes nothing to the history')
  t.ok((byOutcome.get('duplicate') ?? 0) >= 1)
  for (const outcome of ['applied', 'duplicate', 'out_of_order', 'conflict', 'unrecognised']) {
    t.equal(sample(text, 's2v_callback_pushes_total', { outcome }), byOutcome.get(outcome) ?? 0, `pushes ${outcome}`)
  }
  t.equal(sample(text, 's2v_callback_pushes_total', { outcome: 'refused' }), 1, 'but it is counted')

  const count = (route: string, method: string, statusCode: number) =>
    sample(text, 's2v_http_request_duration_seconds_count', { route, method, status_code: String(statusCode) })
  t.equal(count('/v1/video_generation', 'POST', 200), 1)
  t.equal(count('/v1/tasks/:id', 'GET', 200), 1)
  t.equal(count('/get_callback', 'POST', 401), 1)
  t.equal(count('/get_callback/:token', 'POST', 200), 5, 'the fake\'s challenge and two pushes, our duplicate and challenge')
  t.notOk(text.includes(token), 'the callback token never appears')
  t.notOk(text.includes(id), 'nor a task id')
  t.ok((sample(text, 's2v_http_request_duration_seconds_sum', { route: '/v1/tasks/:id', method: 'GET', status_code: '200' }) ?? 0) > 0)

  t.equal(sample(text, 's2v_provider_call_duration_seconds_count', { provider: 'minimax', operation: 'create', ok: 'true' }), 1, 'the create call to MiniMax')
  t.ok((sample(text, 's2v_db_write_duration_seconds_count') ?? 0) >= 4, 'the submit\'s and each applied push\'s transaction')
  t.same(['submitting', 'processing', 'success', 'failed'].map((s) => sample(text, 's2v_tasks', { status: s })), [0, 0, 1, 0])
  t.ok(sample(text, 'process_cpu_user_seconds_total') !== undefined, 'default process metrics')
  t.ok(sample(text, 'nodejs_eventloop_lag_seconds') !== undefined)
})

t.test('a rejected submit is counted with MiniMax\'s code', async (t) => {
  const { app, url, fake } = await startStack(t)
  fake.set({ createErrorCode: 1008 })
  t.equal((await postJson(`${url}/v1/video_generation`, submitBody())).status, 402)
  const { text } = await scrape(app)
  t.equal(sample(text, 's2v_submits_total', { outcome: 'rejected', code: '1008' }), 1)
  t.equal(sample(text, 's2v_submits_total', { outcome: 'created', code: '' }), undefined)
  t.equal(sample(text, 's2v_tasks', { status: 'failed' }), 1)
})

t.test('requests that match no route are labelled unmatched, never with their URL', async (t) => {
  const app = await build(t)
  await app.inject({ url: '/no/such/secret-abc123' })
  const { text } = await scrape(app)
  t.equal(sample(text, 's2v_http_request_duration_seconds_count', { route: 'unmatched', method: 'GET', status_code: '404' }), 1)
  t.notOk(text.includes('secret-abc123'))
})

t.test('tasks by status are counted at scrape time with one grouped query over the status index', async (t) => {
  const app = await build(t)
  const processing = await seedTask(app.taskStore, { task_id: taskId() })
  await seedTask(app.taskStore, { task_id: taskId() })
  await seedTask(app.taskStore)
  await app.taskStore.applyUpdate(processing.seq, null, { status: 'failed', providerStatus: 'Fail', error: { code: '1027', message: 'sensitive' } }, 'callback')
  const { text } = await scrape(app)
  t.same(['submitting', 'processing', 'success', 'failed'].map((s) => sample(text, 's2v_tasks', { status: s })), [1, 1, 0, 1])

  const plan = sqliteDb(app).prepare('EXPLAIN QUERY PLAN SELECT status, count(*) AS n FROM tasks GROUP BY status').all() as Array<{ detail: string }>
  t.match(plan.map((row) => row.detail).join('; '), /COVERING INDEX tasks_by_status/, 'no table scan, no temporary b-tree')
})

t.test('provider calls and database writes are observed from the task events, and the listeners go with the app', async (t) => {
  const logs = new LogCapture()
  const app = await build(t, {}, logs)
  const events = app.taskStore.events
  events.emit('providerCall', { provider: 'modellix', operation: 'query', ms: 40, ok: false, traceId: 'trace-9' })
  events.emit('dbWrite', { ms: 2 })
  events.emit('submit', { outcome: 'unknown', code: 'submit_outcome_unknown' })
  const { text } = await scrape(app)
  t.equal(sample(text, 's2v_provider_call_duration_seconds_count', { provider: 'modellix', operation: 'query', ok: 'false' }), 1)
  t.equal(sample(text, 's2v_provider_call_duration_seconds_bucket', { provider: 'modellix', operation: 'query', ok: 'false', le: '0.025' }), 0)
  t.equal(sample(text, 's2v_provider_call_duration_seconds_bucket', { provider: 'modellix', operation: 'query', ok: 'false', le: '0.05' }), 1, 'milliseconds become seconds')
  t.equal(sample(text, 's2v_db_write_duration_seconds_bucket', { le: '0.0025' }), 1)
  t.equal(sample(text, 's2v_submits_total', { outcome: 'unknown', code: 'submit_outcome_unknown' }), 1)
  t.match(logs.lines.find((line) => line.msg === 'provider call'), { provider: 'modellix', operation: 'query', ok: false, ms: 40, trace_id: 'trace-9' }, 'each call is logged with its trace id')

  const names: Array<keyof TaskEventMap> = ['push', 'submit', 'providerCall', 'dbWrite']
  const before = names.map((name) => events.listenerCount(name))
  await app.close()
  t.same(names.map((name) => events.listenerCount(name)), before.map((n) => n - 1), 'one listener per event removed on close')
})

t.test('with API_TOKENS, /metrics needs a bearer token', async (t) => {
  const app = await build(t, { API_TOKENS: 'ops-token' })
  t.equal((await scrape(app)).status, 401)
  t.equal((await scrape(app, { authorization: 'Bearer wrong' })).status, 401)
  const ok = await scrape(app, { authorization: 'Bearer ops-token', 'x-request-id': 'scrape-1' })
  t.equal(ok.status, 200)
  t.ok(sample(ok.text, 's2v_tasks', { status: 'processing' }) === 0)
  t.equal(ok.headers['x-request-id'], 'scrape-1', 'an incoming request id is kept')
})

t.test('with METRICS_PORT, the app has no /metrics and the metrics server answers without a token', async (t) => {
  const app = await build(t, { METRICS_PORT: '0', API_TOKENS: 'ops-token' })
  const onApp = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer ops-token' } })
  t.equal(onApp.statusCode, 404)
  await app.inject({ url: '/healthz' })

  const server = await buildMetricsServer(app.metrics, app.log)
  t.teardown(() => server.close())
  await server.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(server.server.address() as { port: number }).port}`
  const res = await fetch(`${base}/metrics`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  const text = await res.text()
  t.equal(sample(text, 's2v_http_request_duration_seconds_count', { route: '/healthz', method: 'GET', status_code: '200' }), 1, 'the app\'s own registry')
  const other = await getJson(`${base}/healthz`)
  t.equal(other.status, 404)
  t.equal(other.body.code, 'not_found')
})

// A start takes ~0.5 s idle and was measured at 6-19 s at load average 20 (as startBuiltServer allows, 60 s); a dist/
// built before METRICS_PORT existed never opens the port.
const START_TIMEOUT_MS = 60_000
const SERVER = join(import.meta.dirname, '..', '..', 'dist', 'server.js')

t.test('the process serves /metrics on METRICS_PORT only and stops that server on SIGTERM', { skip: existsSync(SERVER) ? false : 'run `npm run build` first (npm test does)' }, async (t) => {
  const [port, metricsPort] = [await freePort(), await freePort()]
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, PORT: String(port), METRICS_PORT: String(metricsPort), HOST: '127.0.0.1', DATABASE_PATH: join(tempDir(t), 's2v.db'), LOG_LEVEL: 'warn' },
    stdio: 'ignore'
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`
  const deadline = Date.now() + START_TIMEOUT_MS
  for (let ready = false; !ready; await sleep(50)) {
    if (Date.now() > deadline || child.exitCode !== null) return t.fail('the metrics server never answered (a stale dist/? run `npm run build`)')
    ready = await fetch(metricsUrl).then((r) => r.ok, () => false)
  }

  t.match(await (await fetch(metricsUrl)).text(), /s2v_tasks\{status="success"\} 0/)
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404, 'not on the main port')
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0)
  await t.rejects(fetch(metricsUrl), 'the metrics server is closed too')
})

t.test('event-loop delay is exported: a blocked loop shows in s2v_event_loop_delay_seconds, beside prom-client\'s nodejs_eventloop_lag_*', async (t) => {
  const app = await build(t)
  await scrape(app) // prom-client's lag gauges start over at each scrape
  await sleep(250)
  const before = sample((await scrape(app)).text, 's2v_event_loop_delay_seconds_count')!
  const blockedFor = 400
  const started = Date.now()
  // a synchronous step that holds the loop, like a lock wait would
  while (Date.now() - started < blockedFor) { /* spin */ }
  await sleep(250)
  const { text } = await scrape(app)
  const count = sample(text, 's2v_event_loop_delay_seconds_count')!
  t.ok(count > before, `the sampler kept sampling (${count - before} samples)`)
  const atMost = (le: string) => sample(text, 's2v_event_loop_delay_seconds_bucket', { le })!
  t.ok(atMost('0.25') < count, 'one sample saw the loop blocked for more than 0.25 s')
  t.ok(atMost('5') === count, 'and none for more than 5 s (a loaded machine adds its own delays)')
  // prom-client's own gauges are there too (reset at each scrape of any registry in the process, so not asserted on)
  for (const name of ['nodejs_eventloop_lag_max_seconds', 'nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_mean_seconds']) {
    t.ok(sample(text, name)! >= 0, `${name} is exported`)
  }
})
