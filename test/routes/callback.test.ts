import t from 'tap'
import { build, LogCapture, seedTask, taskId, sqliteDb } from '../helper.js'

const push = (app: Awaited<ReturnType<typeof build>>, url: string, payload: unknown, contentType = 'application/json') =>
  app.inject({ method: 'POST', url, headers: { 'content-type': contentType }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })

t.test('a challenge is echoed on both paths, for any token, touching no task', async (t) => {
  const app = await build(t)
  for (const url of ['/get_callback', '/get_callback/anything', `/get_callback/${(await seedTask(app.taskStore)).token}`]) {
    const res = await push(app, url, { challenge: 'c-123' })
    t.equal(res.statusCode, 200, url)
    t.same(res.json(), { challenge: 'c-123' })
  }
  const text = await push(app, '/get_callback', '{"challenge":"plain"}', 'text/plain')
  t.same(text.json(), { challenge: 'plain' }, 'whatever content type MiniMax sends')
})

t.test('a push on the task\'s token path is applied and on disk before the 200', async (t) => {
  const app = await build(t)
  const { id, token } = await seedTask(app.taskStore)
  const tid = taskId()
  const processing = await push(app, `/get_callback/${token}`, { task_id: tid, status: 'Processing', base_resp: { status_code: 0, status_msg: 'success' } })
  t.equal(processing.statusCode, 200)
  t.same(processing.json(), { status: 'success' })
  const row = (await app.taskStore.queries.byId(id))!
  t.equal(row.task_id, tid, 'a push that beats the create answer binds the task_id')
  t.equal(row.status, 'processing')

  await push(app, `/get_callback/${token}`, { task_id: tid, status: 'success', file_id: '205258526306433' })
  const done = (await app.taskStore.queries.byId(id))!
  t.equal(done.status, 'success')
  t.equal(done.file_id, '205258526306433')
  t.same((await app.taskStore.queries.eventsOf(done.seq)).map((event) => [event.source, event.outcome]), [['submit', 'created'], ['callback', 'applied'], ['callback', 'applied']])
})

t.test('a task\'s token is read and checked once: its next pushes skip the read, and a purge ends it', async (t) => {
  const logs = new LogCapture()
  const app = await build(t, {}, logs)
  const tid = taskId()
  const { token } = await seedTask(app.taskStore, { task_id: tid })
  const reads: string[] = []
  const read = app.taskStore.queries.callbackTarget
  app.taskStore.queries.callbackTarget = async (id) => { reads.push(id); return await read(id) }
  t.teardown(() => { app.taskStore.queries.callbackTarget = read })

  t.equal((await push(app, `/get_callback/${token}`, { task_id: tid, status: 'processing' })).statusCode, 200)
  t.equal((await push(app, `/get_callback/${token}`, { task_id: tid, status: 'success', file_id: '205258526306433' })).statusCode, 200)
  t.equal(reads.length, 1, 'the token\'s row was read for the first push only')
  const forged = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`
  t.equal((await push(app, `/get_callback/${forged}`, { task_id: tid, status: 'failed' })).json().code, 'unknown_callback_token', 'a token that differs in one character is still checked, and refused')
  t.equal(reads.length, 2)

  // Retention purges the finished task; MiniMax's late duplicate then finds no task: 401, never a 500.
  sqliteDb(app).prepare("UPDATE tasks SET updated_at = '2000-01-01T00:00:00.000Z'").run()
  t.equal((await app.taskStore.purgeFinished('2001-01-01T00:00:00.000Z', 10)).length, 1)
  const late = await push(app, `/get_callback/${token}`, { task_id: tid, status: 'success', file_id: '205258526306433' })
  t.equal(late.statusCode, 401)
  t.equal(late.json().code, 'unknown_callback_token')
  t.equal(reads.length, 2, 'known until then, so not read')
  t.equal((await push(app, `/get_callback/${token}`, { task_id: tid, status: 'success' })).statusCode, 401)
  t.equal(reads.length, 3, 'forgotten after the purge: read (and found missing) from then on')
  t.ok(logs.lines.some((line) => line.msg === 'refused a status push' && line.reason === 'unknown_token'), 'logged as refused')
})

t.test('a task_id sent as a bare JSON number keeps all its digits', async (t) => {
  const app = await build(t)
  const { id, token } = await seedTask(app.taskStore)
  const res = await push(app, `/get_callback/${token}`, '{"task_id":115334141465231361,"status":"processing"}')
  t.equal(res.statusCode, 200)
  t.equal((await app.taskStore.queries.byId(id))!.task_id, '115334141465231361')
})

t.test('forged pushes are refused with 401, logged, and change and write nothing', async (t) => {
  const logs = new LogCapture()
  const app = await build(t, {}, logs)
  const tid = taskId()
  const { id, token } = await seedTask(app.taskStore, { task_id: tid })
  const other = await seedTask(app.taskStore, { task_id: taskId() })
  const attempts: Array<[string, string]> = [
    ['/get_callback', 'callback_token_required'],
    ['/get_callback/not-a-token', 'unknown_callback_token'],
    [`/get_callback/${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, 'unknown_callback_token'],
    [`/get_callback/${other.token}`, 'token_task_mismatch']
  ]
  const eventCount = () => (sqliteDb(app).prepare('SELECT count(*) AS n FROM task_events').get() as { n: number }).n
  const before = eventCount()
  for (const [url, code] of attempts) {
    const res = await push(app, url, { task_id: tid, status: 'failed' })
    t.equal(res.statusCode, 401, url.slice(0, 40))
    t.equal(res.json().code, code)
  }
  const row = (await app.taskStore.queries.byId(id))!
  t.equal(row.status, 'processing', 'status untouched')
  t.equal(eventCount(), before, 'no event written anywhere')
  t.equal((await app.taskStore.queries.byId(other.id))!.status, 'processing', 'the other task is untouched too')
  const logged = logs.lines.filter((line) => line.msg === 'refused a status push')
  t.same(logged.map((line) => line.reason), ['bare_path', 'unknown_token', 'unknown_token', 'token_task_mismatch'], 'each logged with its reason')
  t.notOk(logs.raw.includes(token), 'the real token never reaches the log')
  t.notOk(logs.raw.includes(other.token), 'nor the other one')
})

t.test('a flood of forged pushes writes nothing, logs a few lines, and never starves the genuine pushes', async (t) => {
  const logs = new LogCapture()
  const app = await build(t, { CALLBACK_RATE_LIMIT: '5' }, logs)
  const tid = taskId()
  const { id, token, seq } = await seedTask(app.taskStore, { task_id: tid })
  const other = await seedTask(app.taskStore, { task_id: taskId() })
  const eventsBefore = await app.taskStore.queries.countEvents(seq)
  const forgeries = [
    '/get_callback', '/get_callback/not-a-token', `/get_callback/${id}.${'A'.repeat(43)}`, `/get_callback/${token.slice(0, -2)}xx`
  ]
  const FLOOD = 4000 // 800 times the per-task limit, all from the one address the genuine pushes come from
  const started = performance.now()
  const statuses = new Map<number, number>()
  for (let i = 0; i < FLOOD; i++) {
    const res = await push(app, forgeries[i % forgeries.length]!, { task_id: tid, status: 'failed' })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
  }
  const ms = performance.now() - started
  t.same([...statuses], [[401, FLOOD]], 'every forgery refused with 401, none rate limited into a 429')
  t.comment(`${FLOOD} forged pushes in ${ms.toFixed(0)} ms (${(FLOOD / ms * 1000).toFixed(0)}/s, app.inject)`)

  const genuine = await push(app, `/get_callback/${token}`, { task_id: tid, status: 'success', file_id: '205258526306433' })
  t.equal(genuine.statusCode, 200, 'the genuine push after the flood is taken')
  t.equal((await app.taskStore.queries.byId(id))!.status, 'success')
  t.equal(await app.taskStore.queries.countEvents(seq), eventsBefore + 1, 'the history grew by the genuine push alone')
  const lines = logs.lines.filter((line) => line.msg === 'refused a status push')
  t.ok(lines.length >= 5 && lines.length <= 5 * (Math.ceil(ms / 1000) + 1), `${lines.length} log lines for ${FLOOD} refusals`)
  t.ok(lines.some((line) => (line.suppressed as number) > 0), 'a later line counts what was suppressed')

  // Genuine pushes are limited per task: one task using up its budget leaves another's alone.
  const answers = []
  for (let i = 0; i < 6; i++) answers.push((await push(app, `/get_callback/${token}`, { task_id: tid, status: 'success' })).statusCode)
  t.same(answers, [200, 200, 200, 200, 429, 429], 'this task\'s own budget (one was spent above)')
  t.equal((await push(app, `/get_callback/${other.token}`, { task_id: (await app.taskStore.queries.byId(other.id))!.task_id, status: 'processing' })).statusCode, 200, 'another task is not limited')
  t.equal((await push(app, '/get_callback/not-a-token', { task_id: tid, status: 'processing' })).statusCode, 401, 'a forgery is still a 401, not a 429')
})

t.test('a numeric challenge is echoed exactly as sent', async (t) => {
  const app = await build(t)
  for (const literal of ['12345678901234567890', '-0.1250', '1e400', '7']) {
    const res = await push(app, '/get_callback', `{"challenge": ${literal}}`)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
    t.equal(res.body, `{"challenge":${literal}}`, literal)
  }
  t.same((await push(app, '/get_callback', { challenge: '12345678901234567890' })).json(), { challenge: '12345678901234567890' }, 'a string stays a string')
  t.equal((await push(app, '/get_callback', '{"challenge": true}')).statusCode, 400, 'neither a string nor a number: refused')
})

t.test('a body with both a challenge and a push: echoed, and its push applied only on the task\'s own URL', async (t) => {
  const app = await build(t)
  const tid = taskId()
  const { id, token, seq } = await seedTask(app.taskStore, { task_id: tid })
  const both = await push(app, `/get_callback/${token}`, { challenge: 'c-9', task_id: tid, status: 'success', file_id: '205258526306433' })
  t.equal(both.statusCode, 200)
  t.same(both.json(), { challenge: 'c-9', status: 'success' }, 'the answer says the push was taken')
  t.equal((await app.taskStore.queries.byId(id))!.status, 'success', 'the push was not dropped')
  const events = await app.taskStore.queries.countEvents(seq)
  for (const url of ['/get_callback', '/get_callback/not-a-token']) {
    const forged = await push(app, url, { challenge: 'c-10', task_id: tid, status: 'failed' })
    t.same(forged.json(), { challenge: 'c-10' }, `${url}: the handshake still answers, without status`)
  }
  t.equal((await app.taskStore.queries.byId(id))!.status, 'success', 'the forged part changed nothing')
  t.equal(await app.taskStore.queries.countEvents(seq), events, 'and wrote nothing')
  const numeric = await push(app, `/get_callback/${token}`, `{"challenge": 98765432109876543210, "task_id": "${tid}", "status": "success"}`)
  t.equal(numeric.body, '{"challenge":98765432109876543210,"status":"success"}')
})

t.test('bad callback bodies get a clear 4xx JSON error', async (t) => {
  const app = await build(t, { CALLBACK_BODY_LIMIT: '1024' })
  const { token } = await seedTask(app.taskStore)
  const cases: Array<[string, unknown, number, string]> = [
    ['malformed JSON', '{"task_id": ', 400, 'bad_request'],
    ['neither challenge nor push', { hello: 1 }, 400, 'invalid_push'],
    ['wrong type', { task_id: 'x', status: 5, base_resp: { status_code: 'zero' } }, 400, 'invalid_request'],
    ['too large', { challenge: 'x'.repeat(2000) }, 413, 'body_too_large'],
    ['not an object', '[1,2]', 400, 'invalid_request'],
    // A bare challenge is answered before the route's hooks, but never before its validation.
    ['a challenge beside a field of the wrong type', { challenge: 'c', status: 5 }, 400, 'invalid_request'],
    ['a challenge of the wrong type', { challenge: ['c'] }, 400, 'invalid_request']
  ]
  for (const [name, payload, status, code] of cases) {
    const res = await push(app, `/get_callback/${token}`, payload)
    t.equal(res.statusCode, status, name)
    t.equal(res.json().code, code, name)
  }
  const overlong = await push(app, `/get_callback/${'t'.repeat(201)}`, { challenge: 'c' })
  t.equal(overlong.statusCode, 400, 'a challenge on a token longer than any of ours: refused like a push there')
  t.equal(overlong.json().code, 'invalid_request')
})

t.test('status pushes are rate limited per task; challenges never are', async (t) => {
  const app = await build(t, { CALLBACK_RATE_LIMIT: '3' })
  const { token } = await seedTask(app.taskStore)
  const tid = taskId()
  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push((await push(app, `/get_callback/${token}`, { task_id: tid, status: 'processing' })).statusCode)
  t.same(statuses, [200, 200, 200, 429, 429])
  for (let i = 0; i < 10; i++) t.equal((await push(app, `/get_callback/${token}`, { challenge: `c${i}` })).statusCode, 200)
})
