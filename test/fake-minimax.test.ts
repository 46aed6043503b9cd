// Tests of the fake MiniMax server itself, against a tiny loopback callback receiver.
import t from 'tap'
import { createServer } from 'node:http'
import type { Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { readFileSync } from 'node:fs'
import { DEFAULT_BEHAVIOUR, fakeVideoBytes, startFakeMiniMax, TINY_MP4_PATH } from './fixtures/fake-minimax.js'
import type { FakeMiniMax } from './fixtures/fake-minimax.js'

const KEY = 'test-key'
const PUSH_DELAY_MS = 5
const SHORT_CHALLENGE_TIMEOUT_MS = 200
const SLOW_ECHO_MS = 400
const CREATE_DELAY_MS = 150
const NINE_HOURS_S = 9 * 60 * 60
const IMAGE_URL = 'https://example.com/face.jpg'

type BaseResp = { status_code: number, status_msg: string }
type Answer = {
  task_id?: string
  status?: string
  file_id?: string
  video_width?: number
  base_resp: BaseResp
  file?: { file_id: number, bytes: number, created_at: number, filename: string, purpose: string, download_url: string }
}
type Reply = { status: number, traceId: string | null, json: Answer }

type Received = { raw: string, json: Record<string, unknown>, at: number }
type ChallengeMode = 'echo' | 'wrong' | 'slow' | 'http500'
type Receiver = { url: string, received: Received[], mode: ChallengeMode, server: Server }

async function startReceiver (): Promise<Receiver> {
  const receiver: Receiver = { url: '', received: [], mode: 'echo', server: createServer() }
  receiver.server.on('request', (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      const json = JSON.parse(raw) as Record<string, unknown>
      receiver.received.push({ raw, json, at: Date.now() })
      answerReceived(receiver.mode, json, res).catch(() => res.destroy())
    })
  })
  await new Promise<void>(resolve => receiver.server.listen(0, '127.0.0.1', resolve))
  receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/callback`
  return receiver
}

async function answerReceived (mode: ChallengeMode, json: Record<string, unknown>, res: ServerResponse): Promise<void> {
  res.setHeader('content-type', 'application/json')
  if (typeof json.challenge !== 'string') {
    res.end('{"status":"success"}')
    return
  }
  if (mode === 'http500') {
    res.writeHead(500).end('{}')
    return
  }
  if (mode === 'slow') await sleep(SLOW_ECHO_MS)
  const challenge = mode === 'wrong' ? 'not-the-challenge' : json.challenge
  if (!res.destroyed) res.end(JSON.stringify({ challenge }))
}

function createBody (extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'S2V-01', subject_reference: [{ type: 'character', image: [IMAGE_URL] }], prompt: 'a walk', ...extra }
}

async function call (url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, init)
  return { status: res.status, traceId: res.headers.get('trace-id'), json: await res.json() as Answer }
}

function authHeaders (key: string | null): Record<string, string> {
  return key === null ? {} : { authorization: `Bearer ${key}` }
}

async function create (fake: FakeMiniMax, body: unknown, key: string | null = KEY): Promise<Reply> {
  return await call(`${fake.url}/v1/video_generation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(key) },
    body: typeof body === 'string' ? body : JSON.stringify(body)
  })
}

async function query (fake: FakeMiniMax, taskId: string, key: string | null = KEY): Promise<Reply> {
  return await call(`${fake.url}/v1/query/video_generation?task_id=${taskId}`, { headers: authHeaders(key) })
}

async function retrieve (fake: FakeMiniMax, fileId: string, key: string | null = KEY): Promise<Reply> {
  return await call(`${fake.url}/v1/files/retrieve?file_id=${fileId}`, { headers: authHeaders(key) })
}

const fake = await startFakeMiniMax({ apiKey: KEY, behaviour: { pushDelayMs: PUSH_DELAY_MS } })
const receiver = await startReceiver()
t.teardown(async () => {
  await fake.close()
  receiver.server.closeAllConnections()
  await new Promise(resolve => receiver.server.close(resolve))
})
t.beforeEach(() => {
  fake.reset()
  receiver.received.length = 0
  receiver.mode = 'echo'
})

const pushes = (): Received[] => receiver.received.filter(r => !('challenge' in r.json))
const pushStatuses = (): unknown[] => pushes().map(r => r.json.status)
const taskStatus = (id: string): string | undefined => fake.tasks.get(id)?.status
const isFinal = (id: string): boolean => taskStatus(id) === 'Success' || taskStatus(id) === 'Fail'

async function createWithCallback (): Promise<string> {
  const reply = await create(fake, createBody({ callback_url: receiver.url }))
  if (reply.json.task_id === undefined) throw new Error(`create failed: ${JSON.stringify(reply.json)}`)
  return reply.json.task_id
}

t.test('auth: missing key is 1004, wrong key is 2049, on every authenticated route; Trace-Id always set', async t => {
  const missing = await create(fake, createBody(), null)
  t.equal(missing.status, 200)
  t.same(missing.json, { base_resp: { status_code: 1004, status_msg: 'authentication failed' } })
  t.match(missing.traceId, /^[0-9a-f]{32}$/)
  const wrong = await create(fake, createBody(), 'nope')
  t.same(wrong.json.base_resp, { status_code: 2049, status_msg: 'invalid api key' })
  t.equal((await query(fake, '1', null)).json.base_resp.status_code, 1004)
  t.equal((await query(fake, '1', 'nope')).json.base_resp.status_code, 2049)
  t.equal((await retrieve(fake, '1', null)).json.base_resp.status_code, 1004)
  t.equal((await retrieve(fake, '1', 'nope')).json.base_resp.status_code, 2049)
  t.equal(fake.tasks.size, 0)
  t.equal(fake.requests.length, 6)
  t.match(fake.requests[0], { method: 'POST', path: '/v1/video_generation', query: '', authorization: null })
  t.match(fake.requests[1], { authorization: 'Bearer nope' })
  t.match(fake.requests[2], { method: 'GET', path: '/v1/query/video_generation', query: 'task_id=1' })
})

t.test('invalid params answer HTTP 200 with 2013 and create nothing', async t => {
  const cases: Array<[string, unknown]> = [
    ['not JSON', '{"model":'],
    ['JSON array', '[]'],
    ['wrong model', createBody({ model: 'T2V-01' })],
    ['no subject_reference', { model: 'S2V-01' }],
    ['two subjects', createBody({ subject_reference: [{ type: 'character', image: [IMAGE_URL] }, { type: 'character', image: [IMAGE_URL] }] })],
    ['wrong subject type', createBody({ subject_reference: [{ type: 'object', image: [IMAGE_URL] }] })],
    ['two images', createBody({ subject_reference: [{ type: 'character', image: [IMAGE_URL, IMAGE_URL] }] })],
    ['image not a string', createBody({ subject_reference: [{ type: 'character', image: [42] }] })],
    ['ftp image', createBody({ subject_reference: [{ type: 'character', image: ['ftp://example.com/a.jpg'] }] })],
    ['gif data URL', createBody({ subject_reference: [{ type: 'character', image: ['data:image/gif;base64,R0lGOD=='] }] })],
    ['bad base64', createBody({ subject_reference: [{ type: 'character', image: ['data:image/png;base64,!!!'] }] })],
    ['prompt too long', createBody({ prompt: 'x'.repeat(2001) })],
    ['prompt not a string', createBody({ prompt: 7 })],
    ['prompt_optimizer not boolean', createBody({ prompt_optimizer: 'yes' })],
    ['callback_url not a URL', createBody({ callback_url: 'not a url' })],
    ['callback_url not http', createBody({ callback_url: 'ftp://example.com/cb' })]
  ]
  for (const [name, body] of cases) {
    const reply = await create(fake, body)
    t.equal(reply.status, 200, name)
    t.equal(reply.json.base_resp.status_code, 2013, name)
    t.match(reply.json.base_resp.status_msg, /^invalid params, /, name)
    t.notOk(reply.json.task_id, name)
  }
  t.equal(fake.tasks.size, 0)
  t.equal(receiver.received.length, 0, 'no challenge for an invalid create')
})

t.test('valid edge cases are accepted: 2000-char prompt, data URLs, a ~20 MB body', async t => {
  const png = 'data:image/png;base64,' + Buffer.from('png bytes').toString('base64')
  const webp = 'data:image/webp;base64,' + Buffer.alloc(15 * 1024 * 1024, 7).toString('base64')
  for (const body of [
    createBody({ prompt: 'é'.repeat(2000), prompt_optimizer: false }),
    createBody({ subject_reference: [{ type: 'character', image: [png] }] }),
    createBody({ subject_reference: [{ type: 'character', image: [webp] }] })
  ]) {
    const reply = await create(fake, body)
    t.same(reply.json.base_resp, { status_code: 0, status_msg: 'success' })
    t.match(reply.json.task_id, /^\d{18}$/)
  }
  t.equal(fake.tasks.size, 3)
})

t.test('normal flow: challenge first, 18-digit string id, pushes processing then success, query Success', async t => {
  const started = Date.now()
  const raw = await fetch(`${fake.url}/v1/video_generation`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}` },
    body: JSON.stringify(createBody({ callback_url: receiver.url }))
  })
  const answeredAt = Date.now()
  const text = await raw.text()
  const taskId = (JSON.parse(text) as Answer).task_id ?? ''
  t.match(text, new RegExp(`^\\{"task_id":"${taskId}","base_resp":\\{"status_code":0,"status_msg":"success"\\}\\}$`))
  t.match(taskId, /^\d{18}$/)
  t.ok(BigInt(taskId) > 2n ** 53n, 'task id exceeds 2^53')

  const challenge = receiver.received[0]
  t.type(challenge?.json.challenge, 'string')
  t.ok((challenge?.at ?? Infinity) >= started && (challenge?.at ?? Infinity) <= answeredAt, 'challenge came during create')
  t.match(fake.challenges, [{ url: receiver.url, ok: true, reason: null }])

  await fake.waitFor(() => fake.pushes.length === 2)
  t.same(pushStatuses(), ['processing', 'success'])
  const [processing, success] = pushes()
  t.same(processing?.json, { task_id: taskId, status: 'processing', base_resp: { status_code: 0, status_msg: 'success' } })
  const fileId = fake.tasks.get(taskId)?.file_id ?? ''
  t.match(fileId, /^\d{15,}$/)
  t.same(success?.json, { task_id: taskId, status: 'success', file_id: fileId, base_resp: { status_code: 0, status_msg: 'success' } })
  t.match(fake.pushes, [
    { task_id: taskId, statusCode: 200, responseBody: '{"status":"success"}', error: null },
    { task_id: taskId, statusCode: 200, error: null }
  ])

  const done = await query(fake, taskId)
  t.same(done.json, {
    task_id: taskId, status: 'Success', file_id: fileId, video_width: 1280, video_height: 720, base_resp: { status_code: 0, status_msg: 'success' }
  })
})

t.test('query before completion reports an unfinished task; completeTask finishes it without pushing', async t => {
  fake.set({ pushes: 'none', pushDelayMs: 10_000 })
  const taskId = await createWithCallback()
  const early = await query(fake, taskId)
  t.same(early.json, { task_id: taskId, status: 'Queueing', file_id: '', base_resp: { status_code: 0, status_msg: 'success' } })

  fake.completeTask(taskId, 'failed')
  const failed = await query(fake, taskId)
  t.same(failed.json, { task_id: taskId, status: 'Fail', file_id: '', base_resp: { status_code: 1027, status_msg: 'output video contains sensitive content' } })
  t.equal(fake.pushes.length, 0)
  t.throws(() => fake.completeTask('999'), /no task 999/)
})

t.test('challenge failures fail create with 2013 and create no task', async t => {
  fake.set({ challengeTimeoutMs: SHORT_CHALLENGE_TIMEOUT_MS })
  const expected = { status_code: 2013, status_msg: 'invalid params, fail to check callback url' }

  receiver.mode = 'wrong'
  t.same((await create(fake, createBody({ callback_url: receiver.url }))).json, { base_resp: expected })
  t.match(fake.challenges[0], { ok: false, reason: /echo/ })

  receiver.mode = 'slow'
  const started = Date.now()
  t.same((await create(fake, createBody({ callback_url: receiver.url }))).json, { base_resp: expected })
  t.ok(Date.now() - started < SLOW_ECHO_MS, 'gave up before the slow echo')
  t.match(fake.challenges[1], { ok: false, reason: 'timeout' })
  t.ok((fake.challenges[1]?.ms ?? 0) >= SHORT_CHALLENGE_TIMEOUT_MS - 10, 'waited about challengeTimeoutMs')

  receiver.mode = 'http500'
  t.same((await create(fake, createBody({ callback_url: receiver.url }))).json, { base_resp: expected })
  t.match(fake.challenges[2], { ok: false, reason: /HTTP 500/ })

  t.same((await create(fake, createBody({ callback_url: 'http://127.0.0.1:1/closed' }))).json, { base_resp: expected })
  t.match(fake.challenges[3], { ok: false })
  t.equal(fake.tasks.size, 0)
})

t.test('challenge: false skips the challenge; no callback_url means no challenge and no pushes', async t => {
  fake.set({ challenge: false })
  const taskId = await createWithCallback()
  await fake.waitFor(() => fake.pushes.length === 2)
  t.equal(fake.challenges.length, 0)
  t.same(pushStatuses(), ['processing', 'success'])
  t.equal(receiver.received.length, 2)

  fake.set({ challenge: true })
  const plain = await create(fake, createBody())
  const plainId = plain.json.task_id ?? ''
  await fake.waitFor(() => isFinal(plainId))
  t.equal(fake.challenges.length, 0)
  t.equal(fake.pushes.length, 2)
  t.not(plainId, taskId)
})

t.test('createErrorCode answers HTTP 200 with the standard message, before any challenge', async t => {
  for (const [code, message] of [[1008, 'insufficient balance'], [1002, 'rate limit exceeded'], [1026, 'input contains sensitive content']] as const) {
    fake.set({ createErrorCode: code })
    const reply = await create(fake, createBody({ callback_url: receiver.url }))
    t.equal(reply.status, 200)
    t.same(reply.json, { base_resp: { status_code: code, status_msg: message } })
  }
  t.equal(receiver.received.length, 0)
  t.equal(fake.tasks.size, 0)
})

t.test('createHttpStatus answers that HTTP status with base_resp 1000', async t => {
  for (const status of [500, 502, 503, 429]) {
    fake.set({ createHttpStatus: status })
    const reply = await create(fake, createBody({ callback_url: receiver.url }))
    t.equal(reply.status, status)
    t.equal(reply.json.base_resp.status_code, 1000)
    t.match(reply.traceId, /^[0-9a-f]{32}$/)
  }
  t.equal(fake.tasks.size, 0)
})

t.test('createDelayMs delays the answer; the task already exists meanwhile', async t => {
  fake.set({ createDelayMs: CREATE_DELAY_MS })
  const started = Date.now()
  const pending = create(fake, createBody())
  await fake.waitFor(() => fake.tasks.size === 1)
  const reply = await pending
  t.ok(Date.now() - started >= CREATE_DELAY_MS - 10, 'answer was delayed')
  t.ok(fake.tasks.has(reply.json.task_id ?? ''))
})

t.test('createResetConnection destroys the socket after creating the task, which still progresses', async t => {
  fake.set({ createResetConnection: true })
  await t.rejects(create(fake, createBody({ callback_url: receiver.url })))
  t.equal(fake.tasks.size, 1)
  t.equal(fake.challenges.length, 1, 'the challenge happened first')
  await fake.waitFor(() => fake.pushes.length === 2)
  t.same(pushStatuses(), ['processing', 'success'])
  const [taskId] = fake.tasks.keys()
  t.equal(taskStatus(taskId ?? ''), 'Success')
})

t.test('pushBeforeCreateReturns: both pushes are answered before the create answer', async t => {
  fake.set({ pushBeforeCreateReturns: true })
  const taskId = await createWithCallback()
  t.same(pushStatuses(), ['processing', 'success'], 'pushes already received')
  t.equal(fake.pushes.length, 2)
  t.equal(taskStatus(taskId), 'Success')
  t.equal(pushes()[0]?.json.task_id, taskId)
  await sleep(PUSH_DELAY_MS * 4)
  t.equal(fake.pushes.length, 2, 'nothing pushed afterwards')
})

t.test('duplicate pushes each status twice', async t => {
  fake.set({ pushes: 'duplicate' })
  const taskId = await createWithCallback()
  await fake.waitFor(() => fake.pushes.length === 4)
  t.same(pushStatuses(), ['processing', 'processing', 'success', 'success'])
  t.ok(pushes().every(p => p.json.task_id === taskId))
  t.equal(pushes()[2]?.raw, pushes()[3]?.raw)
})

t.test('out_of_order pushes the final status first, then processing; query stays Success', async t => {
  fake.set({ pushes: 'out_of_order' })
  const taskId = await createWithCallback()
  await fake.waitFor(() => fake.pushes.length === 2)
  t.same(pushStatuses(), ['success', 'processing'])
  t.equal((await query(fake, taskId)).json.status, 'Success')
})

t.test('failed final status carries failureCode; capitalised uses Processing/Success/Fail', async t => {
  fake.set({ finalStatus: 'failed', failureCode: 1026, capitalised: true })
  const taskId = await createWithCallback()
  await fake.waitFor(() => fake.pushes.length === 2)
  t.same(pushStatuses(), ['Processing', 'Fail'])
  t.same(pushes()[1]?.json, { task_id: taskId, status: 'Fail', base_resp: { status_code: 1026, status_msg: 'input contains sensitive content' } })
  const failed = await query(fake, taskId)
  t.same(failed.json, { task_id: taskId, status: 'Fail', file_id: '', base_resp: { status_code: 1026, status_msg: 'input contains sensitive content' } })

  fake.set({ finalStatus: 'success' })
  await createWithCallback()
  await fake.waitFor(() => fake.pushes.length === 4)
  t.same(pushStatuses().slice(2), ['Processing', 'Success'])

  fake.set({ finalStatus: 'failed', capitalised: false, failureCode: 1027 })
  await createWithCallback()
  await fake.waitFor(() => fake.pushes.length === 6)
  t.same(pushStatuses().slice(4), ['processing', 'failed'])
})

t.test('taskIdAsNumber writes the id as a bare JSON number, every digit kept in the raw bytes', async t => {
  fake.set({ taskIdAsNumber: true })
  const taskId = await createWithCallback()
  await fake.waitFor(() => fake.pushes.length === 2)
  for (const push of pushes()) {
    t.ok(push.raw.startsWith(`{"task_id":${taskId},`), push.raw)
    t.notOk(push.raw.includes(`"${taskId}"`))
    t.not(String(push.json.task_id), taskId, 'JSON.parse loses digits')
  }
  t.equal(fake.pushes[0]?.body, pushes()[0]?.raw, 'the push log keeps the exact bytes')
})

t.test('pushes none and half: the query still reaches the final status', async t => {
  fake.set({ pushes: 'none' })
  const silent = await createWithCallback()
  await fake.waitFor(() => isFinal(silent))
  t.equal((await query(fake, silent)).json.status, 'Success')
  t.equal(fake.pushes.length, 0)
  t.equal(receiver.received.length, 1, 'only the challenge')

  fake.set({ pushes: 'half' })
  const half = await createWithCallback()
  await fake.waitFor(() => isFinal(half))
  t.equal((await query(fake, half)).json.status, 'Success')
  t.same(pushStatuses(), ['processing'])
})

const TINY_MP4 = readFileSync(TINY_MP4_PATH)

t.test('files/retrieve and download', async t => {
  const taskId = await createWithCallback()
  await fake.waitFor(() => isFinal(taskId))
  const fileId = fake.tasks.get(taskId)?.file_id ?? ''
  const nowS = Math.floor(Date.now() / 1000)

  const { json } = await retrieve(fake, fileId)
  t.same(json.base_resp, { status_code: 0, status_msg: 'success' })
  t.match(json.file, { file_id: Number(fileId), bytes: fakeVideoBytes(fileId).length, filename: 'output.mp4', purpose: 'video_generation' })
  t.ok(Math.abs((json.file?.created_at ?? 0) - nowS) <= 2, 'created_at is recent unix seconds')
  const downloadUrl = new URL(json.file?.download_url ?? '')
  t.equal(`${downloadUrl.origin}${downloadUrl.pathname}`, `${fake.url}/download/${fileId}.mp4`)
  t.ok(Math.abs(Number(downloadUrl.searchParams.get('Expires')) - (nowS + NINE_HOURS_S)) <= 2, 'expires in 9 hours')

  const download = await fetch(downloadUrl)
  t.equal(download.status, 200)
  t.equal(download.headers.get('content-type'), 'video/mp4')
  t.equal(download.headers.get('content-length'), String(fakeVideoBytes(fileId).length))
  t.match(download.headers.get('trace-id'), /^[0-9a-f]{32}$/)
  const bytes = Buffer.from(await download.arrayBuffer())
  t.equal(bytes.subarray(4, 8).toString('latin1'), 'ftyp')
  t.ok(bytes.equals(fakeVideoBytes(fileId)), 'deterministic bytes')
  t.ok(bytes.subarray(0, TINY_MP4.length).equals(TINY_MP4), 'the shared real MP4 first, then a free box')
  t.equal(bytes.subarray(TINY_MP4.length + 4, TINY_MP4.length + 8).toString('latin1'), 'free')
  const again = Buffer.from(await (await fetch(downloadUrl)).arrayBuffer())
  t.ok(again.equals(bytes))
  t.notOk(fakeVideoBytes('123456789012345').equals(bytes), 'bytes depend on the file id')

  t.same((await retrieve(fake, '123')).json, { base_resp: { status_code: 2013, status_msg: 'invalid params, file not found' } })
  t.equal((await fetch(`${fake.url}/download/123.mp4`)).status, 404)
  t.equal((await fetch(`${fake.url}/download/${fileId}.mp4?Expires=${nowS - 1}&sig=x`)).status, 403)
  t.same((await query(fake, '42')).json, { task_id: '42', base_resp: { status_code: 2013, status_msg: 'invalid params, task not found' } })
})

t.test('control panel, 404s, set validation, waitFor timeout and reset', async t => {
  const patched = await call(`${fake.url}/_fake/behaviour`, { method: 'POST', body: JSON.stringify({ pushes: 'half', failureCode: 1013 }) })
  t.same(patched.json, { ...DEFAULT_BEHAVIOUR, pushDelayMs: PUSH_DELAY_MS, pushes: 'half', failureCode: 1013 })
  const rejected = await fetch(`${fake.url}/_fake/behaviour`, { method: 'POST', body: '{"pushes":"sideways"}' })
  t.equal(rejected.status, 400)
  t.throws(() => fake.set({ nope: true } as never), /unknown behaviour key: nope/)

  await createWithCallback()
  const state = await call(`${fake.url}/_fake/state`)
  t.match(state.json, { counts: { tasks: 1, challenges: 1 }, tasks: [{ callback_url: receiver.url }] })

  const missing = await fetch(`${fake.url}/v1/nothing`)
  t.equal(missing.status, 404)
  t.match(await missing.json(), { error: 'not found' })
  t.match(missing.headers.get('trace-id'), /^[0-9a-f]{32}$/)

  await t.rejects(fake.waitFor(() => false, 50), /waitFor: condition still false after 50 ms/)

  const httpReset = await call(`${fake.url}/_fake/reset`, { method: 'POST' })
  t.same(httpReset.json, { ...DEFAULT_BEHAVIOUR, pushDelayMs: PUSH_DELAY_MS }, 'POST /_fake/reset restores the behaviour')
  t.equal(fake.tasks.size, 1, '... and keeps the tasks, so their videos still download')
  await call(`${fake.url}/_fake/reset?forget=true`, { method: 'POST' })
  t.equal(fake.tasks.size, 0, '?forget=true forgets them too')

  fake.reset()
  t.equal(fake.tasks.size, 0)
  t.equal(fake.requests.length, 0)
  t.equal(fake.pushes.length, 0)
  t.equal(fake.challenges.length, 0)
  t.same((await call(`${fake.url}/_fake/behaviour`)).json, { ...DEFAULT_BEHAVIOUR, pushDelayMs: PUSH_DELAY_MS })
})

t.test('create limits: 1002 past createRpm in the window, 2045 on a sudden burst; refusals create nothing and are recorded', async t => {
  // Windows of seconds, not milliseconds: three creates in a row must fit in one even on a loaded machine.
  fake.set({ createRpm: 2, createRpmWindowMs: 1500 })
  const first = await create(fake, createBody())
  const second = await create(fake, createBody())
  const third = await create(fake, createBody())
  t.equal(first.json.base_resp.status_code, 0)
  t.equal(second.json.base_resp.status_code, 0)
  t.same(third.json.base_resp, { status_code: 1002, status_msg: 'rate limit exceeded' }, 'the third in the window is refused')
  t.equal(fake.tasks.size, 2, 'a refused create creates nothing')
  await sleep(1550)
  t.equal((await create(fake, createBody())).json.base_resp.status_code, 0, 'the window moved on')
  t.equal(fake.createTimes.length, 3)
  t.same(fake.refusedCreates.map(r => r.code), [1002])

  fake.reset()
  fake.set({ createBurstMs: 1000 })
  t.equal((await create(fake, createBody())).json.base_resp.status_code, 0)
  t.equal((await create(fake, createBody())).json.base_resp.status_code, 2045, 'too soon after the previous one')
  await sleep(1020)
  t.equal((await create(fake, createBody())).json.base_resp.status_code, 0, 'a steady pace is accepted')
  t.throws(() => fake.set({ createRpm: 0 }), 'createRpm is at least 1')
})
