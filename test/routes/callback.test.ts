import t from 'tap'
import { build, LogCapture, seedTask, taskId } from '../helper.js'

const push = (app: Awaited<ReturnType<typeof build>>, url: string, payload: unknown, contentType = 'application/json') =>
  app.inject({ method: 'POST', url, headers: { 'content-type': contentType }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })

t.test('a challenge is echoed on both paths, for any token, touching no task', async (t) => {
  const app = await build(t)
  for (const url of ['/get_callback', '/get_callback/anything', `/get_callback/${seedTask(app.taskStore).token}`]) {
    const res = await push(app, url, { challenge: 'c-123' })
    t.equal(res.statusCode, 200, url)
    t.same(res.json(), { challenge: 'c-123' })
  }
  const text = await push(app, '/get_callback', '{"challenge":"plain"}', 'text/plain')
  t.same(text.json(), { challenge: 'plain' }, 'whatever content type MiniMax sends')
})

t.test('a push on the task\'s token path is applied and on disk before the 200', async (t) => {
  const app = await build(t)
  const { id, token } = seedTask(app.taskStore)
  const tid = taskId()
  const processing = await push(app, `/get_callback/${token}`, { task_id: tid, status: 'Processing', base_resp: { status_code: 0, status_msg: 'success' } })
  t.equal(processing.statusCode, 200)
  t.same(processing.json(), { status: 'success' })
  const row = app.taskStore.repo.byId(id)!
  t.equal(row.task_id, tid, 'a push that beats the create answer binds the task_id')
  t.equal(row.status, 'processing')

  await push(app, `/get_callback/${token}`, { task_id: tid, status: 'success', file_id: '205258526306433' })
  const done = app.taskStore.repo.byId(id)!
  t.equal(done.status, 'success')
  t.equal(done.file_id, '205258526306433')
  t.same(app.taskStore.repo.eventsOf(done.seq).map((event) => [event.source, event.outcome]), [['callback', 'applied'], ['callback', 'applied']])
})

t.test('a task_id sent as a bare JSON number keeps all its digits', async (t) => {
  const app = await build(t)
  const { id, token } = seedTask(app.taskStore)
  const res = await push(app, `/get_callback/${token}`, '{"task_id":115334141465231361,"status":"processing"}')
  t.equal(res.statusCode, 200)
  t.equal(app.taskStore.repo.byId(id)!.task_id, '115334141465231361')
})

t.test('forged pushes are refused with 401, logged, and change nothing', async (t) => {
  const logs = new LogCapture()
  const app = await build(t, {}, logs)
  const tid = taskId()
  const { id, token } = seedTask(app.taskStore, { task_id: tid })
  const other = seedTask(app.taskStore, { task_id: taskId() })
  const attempts: Array<[string, string]> = [
    ['/get_callback', 'callback_token_required'],
    ['/get_callback/not-a-token', 'unknown_callback_token'],
    [`/get_callback/${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, 'unknown_callback_token'],
    [`/get_callback/${other.token}`, 'token_task_mismatch']
  ]
  for (const [url, code] of attempts) {
    const res = await push(app, url, { task_id: tid, status: 'failed' })
    t.equal(res.statusCode, 401, url.slice(0, 40))
    t.equal(res.json().code, code)
  }
  const row = app.taskStore.repo.byId(id)!
  t.equal(row.status, 'processing', 'status untouched')
  t.equal(app.taskStore.repo.eventsOf(row.seq).filter((event) => event.outcome === 'refused').length, 3, 'refusals naming this task are in its history')
  t.equal(app.taskStore.repo.byId(other.id)!.status, 'processing', 'the other task is untouched too')
  t.ok(logs.lines.some((line) => line.msg === 'refused an unauthenticated status push'), 'logged')
  t.notOk(logs.raw.includes(token), 'the real token never reaches the log')
})

t.test('bad callback bodies get a clear 4xx JSON error', async (t) => {
  const app = await build(t, { CALLBACK_BODY_LIMIT: '1024' })
  const { token } = seedTask(app.taskStore)
  const cases: Array<[string, unknown, number, string]> = [
    ['malformed JSON', '{"task_id": ', 400, 'bad_request'],
    ['neither challenge nor push', { hello: 1 }, 400, 'invalid_push'],
    ['wrong type', { task_id: 'x', status: 5, base_resp: { status_code: 'zero' } }, 400, 'invalid_request'],
    ['too large', { challenge: 'x'.repeat(2000) }, 413, 'body_too_large'],
    ['not an object', '[1,2]', 400, 'invalid_request']
  ]
  for (const [name, payload, status, code] of cases) {
    const res = await push(app, `/get_callback/${token}`, payload)
    t.equal(res.statusCode, status, name)
    t.equal(res.json().code, code, name)
  }
})

t.test('status pushes are rate limited per address; challenges never are', async (t) => {
  const app = await build(t, { CALLBACK_RATE_LIMIT: '3' })
  const { token } = seedTask(app.taskStore)
  const tid = taskId()
  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push((await push(app, `/get_callback/${token}`, { task_id: tid, status: 'processing' })).statusCode)
  t.same(statuses, [200, 200, 200, 429, 429])
  for (let i = 0; i < 10; i++) t.equal((await push(app, `/get_callback/${token}`, { challenge: `c${i}` })).statusCode, 200)
})
