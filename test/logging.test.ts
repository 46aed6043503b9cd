// Secrets never reach the logs: API key, bearer tokens, callback tokens, image data.
import t from 'tap'
import { build, LogCapture, postJson, seedTask, startStack, submitBody, taskId } from './helper.js'
import { redactUrl } from '../src/logger.js'

t.test('a whole flow logs request ids and no secret', async (t) => {
  const logs = new LogCapture()
  const stack = await startStack(t, { logs, env: { API_TOKENS: 'caller-secret-token', LOG_LEVEL: 'debug' } })
  const image = `data:image/png;base64,${Buffer.from('not really a png but secret pixels').toString('base64')}`
  const res = await postJson(`${stack.url}/v1/video_generation`, submitBody({ subject_reference: [{ type: 'character', image: [image] }] }), {
    authorization: 'Bearer caller-secret-token', 'x-request-id': 'trace-me-123'
  })
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-request-id'), 'trace-me-123', 'an incoming request id is kept and returned')
  await stack.fake.waitFor(() => stack.fake.pushes.length >= 2)
  const token = stack.fake.challenges[0]!.url.split('/get_callback/')[1]!

  t.ok(logs.lines.some((line) => line.reqId === 'trace-me-123'), 'request log lines carry the request id')
  t.ok(logs.lines.some((line) => line.msg === 'provider created the task' && line.trace_id), 'MiniMax\'s Trace-Id is logged')
  t.ok(logs.lines.some((line) => (line.req as { url?: string } | undefined)?.url === '/get_callback/[redacted]'), 'callback URLs are logged without their token')
  for (const [what, secret] of [['API key', stack.fake.apiKey], ['bearer token', 'caller-secret-token'], ['callback token', token], ['token secret', token.split('.')[1]!], ['image data', image.slice(22)]]) {
    t.notOk(logs.raw.includes(secret!), `${what} is not in the logs`)
  }
})

t.test('redactUrl cuts the token out of any callback URL', async (t) => {
  t.equal(redactUrl('/get_callback/abc.def?x=1'), '/get_callback/[redacted]?x=1')
  t.equal(redactUrl('/get_callback'), '/get_callback')
  t.equal(redactUrl('/v1/tasks/1'), '/v1/tasks/1')
  t.equal(redactUrl('/v1/files/download/x?expires=1&signature=abc_-'), '/v1/files/download/x?expires=1&signature=[redacted]', 'and a link\'s signature')
  t.equal(redactUrl('/v1/files/download/x?signature=abc&expires=1'), '/v1/files/download/x?signature=[redacted]&expires=1')
  const token = `${'0'.repeat(8)}-aaaa-bbbb-cccc-${'d'.repeat(12)}.${'Ab_-'.repeat(10)}xyz`
  const encoded = [...token].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('')
  for (const url of [
    `/GET_CALLBACK/${token}`, `/Get_Callback/${token}?x=1`, `/get%5Fcallback/${token}`, `/get%5fcallback/${encoded}`,
    `/get_callback/${encoded}`, `//get_callback//${token}`, `/get_callback/x/../${token}`, `/v1/tasks/${token}`, `/healthz?t=${encoded}`,
    `/get_callback/${token}%zz`
  ]) {
    const logged = redactUrl(url)
    t.notOk(logged.includes(token) || logged.includes(encoded) || logged.includes(token.split('.')[1]!), `${url.slice(0, 30)}… → ${logged}`)
    t.match(logged, /\[redacted\]/)
  }
})

t.test('a callback token is not logged however the path is spelt', async (t) => {
  const logs = new LogCapture()
  const stack = await startStack(t, { logs, env: { LOG_LEVEL: 'debug' } })
  const res = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  t.equal(res.status, 200)
  const token = stack.fake.challenges[0]!.url.split('/get_callback/')[1]!
  const encoded = [...token].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('')
  for (const path of [`/GET_CALLBACK/${token}`, `/get%5Fcallback/${token}`, `/get_callback/${encoded}`, `/Get_Callback/${encoded}`, `/get_callback/${token}/extra`]) {
    const answer = await postJson(`${stack.url}${path}`, { task_id: res.body.task_id, status: 'success' })
    t.ok(answer.status < 500, `${path.slice(0, 24)}… answered ${answer.status}`)
    t.notOk(JSON.stringify(answer.body).includes(token.split('.')[1]!), 'nor echoed in a 404 message')
  }
  const secret = token.split('.')[1]!
  t.notOk(logs.raw.includes(secret), 'the token\'s secret is in no log line')
  t.notOk(logs.raw.includes(encoded.slice(120)), 'nor its percent-encoded form')
})

t.test('at info, one access-log line per request, carrying what the handler learned', async (t) => {
  const logs = new LogCapture()
  logs.logger.level = 'info'
  const app = await build(t, { API_TOKENS: 'alice:alice-token' }, logs)
  const task = await seedTask(app.taskStore, { caller: 'alice' })
  const providerTaskId = taskId()
  const push = await app.inject({ method: 'POST', url: `/get_callback/${task.token}`, payload: { task_id: providerTaskId, status: 'processing' }, headers: { 'x-request-id': 'push-1' } })
  t.equal(push.statusCode, 200)
  const refused = await app.inject({ method: 'GET', url: '/v1/tasks/nope', headers: { authorization: 'Bearer alice-token', 'x-request-id': 'lookup-1' } })
  t.equal(refused.statusCode, 404)
  const of = (reqId: string) => logs.lines.filter((line) => line.reqId === reqId)
  t.match(of('push-1'), [{ level: 30, msg: 'request completed', req: { method: 'POST', url: '/get_callback/[redacted]' }, res: { statusCode: 200 }, responseTime: Number, push: { id: task.id, task_id: providerTaskId, provider_status: 'processing', outcome: 'applied', status: 'processing' } }], 'the push: one line with its outcome')
  t.equal(of('push-1').length, 1)
  t.match(of('lookup-1'), [{ msg: 'request completed', res: { statusCode: 404 }, refused: { code: 'not_found', message: String } }], 'a refusal: one line with its code')
  t.equal(of('lookup-1').length, 1)
  t.notOk(logs.raw.includes(task.token.split('.')[1]!), 'the token is not on the line')
  t.notOk(logs.lines.some((line) => line.msg === 'incoming request'), 'no request line at info')
})
