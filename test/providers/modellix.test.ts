// Tests of the Modellix client against the fake Modellix (and, for malformed answers, a tiny raw server).
import t from 'tap'
import { failure, rawServer } from './helpers.js'
import {
  DEFAULT_MODELLIX_SUBMIT_PATH, MODELLIX_EXPIRY_MARGIN_MS, MODELLIX_RESULT_TTL_MS, ModellixClient
} from '../../src/providers/modellix.js'
import type { ModellixClientOptions } from '../../src/providers/modellix.js'
import type { ProviderCall, ProviderTaskState } from '../../src/providers/provider.js'
import { fakeVideoBytes } from '../fixtures/fake-minimax.js'
import { startFakeModellix } from '../fixtures/fake-modellix.js'
import type { FakeModellix, FakeModellixBehaviour } from '../fixtures/fake-modellix.js'
import { freePort } from '../helper.js'

const IMAGE = 'https://example.com/face.jpg'
const request = { model: 'S2V-01', image: IMAGE, prompt: 'a person waves', prompt_optimizer: false }
// Small, so a task finishes within a few polls.
const STEP_MS = 20
const POLL_MS = 5
const TIMEOUT_MS = 2000
const SHORT_TIMEOUT_MS = 200
const SLOW_ANSWER_MS = 600
const HOUR_MS = 60 * 60 * 1000

type Tap = { teardown: (fn: () => unknown) => void }

async function setup (t: Tap, behaviour: Partial<FakeModellixBehaviour> = {}, options: Partial<ModellixClientOptions> = {}) {
  const fake = await startFakeModellix({ behaviour: { stepMs: STEP_MS, ...behaviour } })
  t.teardown(() => fake.close())
  const calls: ProviderCall[] = []
  const client = new ModellixClient({
    baseUrl: fake.url, apiKey: fake.apiKey, timeoutMs: TIMEOUT_MS, onCall: call => calls.push(call), ...options
  })
  return { fake, client, calls }
}

/** Polls until the task leaves pending/processing; returns every state seen. */
async function pollToEnd (client: ModellixClient, taskId: string): Promise<ProviderTaskState[]> {
  const seen: ProviderTaskState[] = []
  const deadline = Date.now() + TIMEOUT_MS
  while (Date.now() < deadline) {
    const state = await client.query(taskId)
    seen.push(state)
    if (!['pending', 'processing'].includes(state.providerStatus)) return seen
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
  }
  throw new Error(`task ${taskId} did not finish`)
}

function submitBodies (fake: FakeModellix): Record<string, unknown>[] {
  return [...fake.tasks.values()].map(task => task.body)
}

t.test('the client is a polling-only provider named modellix', async (t) => {
  const client = new ModellixClient({ baseUrl: 'http://127.0.0.1:1', apiKey: 'k', timeoutMs: 1 })
  t.equal(client.name, 'modellix')
  t.equal(client.pushesStatus, false)
  t.equal(DEFAULT_MODELLIX_SUBMIT_PATH, '/api/v1/minimax/minimax-s2v-01/async')
})

t.test('submit posts Modellix\'s body with the bearer key and returns its string task id and request id', async (t) => {
  const { fake, client, calls } = await setup(t)
  const { taskId, traceId } = await client.submit(request, 'https://ignored.example/cb')
  t.match(taskId, /^task-[0-9a-f]+$/)
  t.type(taskId, 'string')
  t.ok(fake.tasks.has(taskId))
  t.match(traceId, /^[0-9a-f]{32}$/)
  t.same(submitBodies(fake), [{ subject_reference_images: [IMAGE], prompt: 'a person waves', prompt_optimizer: false }],
    'no model, no callback_url: the model is in the path and Modellix has no callbacks')
  t.same(fake.requests.map(r => [r.method, r.path, r.authorization]), [['POST', DEFAULT_MODELLIX_SUBMIT_PATH, `Bearer ${fake.apiKey}`]])
  t.equal(calls.length, 1)
  t.match(calls[0], { provider: 'modellix', operation: 'create', ok: true, traceId })
  t.ok((calls[0]?.ms ?? -1) >= 0)
})

t.test('submit leaves out the prompt fields it was not given', async (t) => {
  const { fake, client } = await setup(t)
  await client.submit({ model: 'S2V-01', image: 'data:image/png;base64,iVBORw0KGgo=' }, null)
  t.same(submitBodies(fake), [{ subject_reference_images: ['data:image/png;base64,iVBORw0KGgo='] }])
})

t.test('submit accepts the {success: true, data} envelope as well as {code: 0, data}', async (t) => {
  // A task that stays pending: the fake's default 50 ms step can pass between the two calls on a busy machine.
  const { fake, client } = await setup(t, { envelope: 'success', stepMs: 60_000 })
  const { taskId } = await client.submit(request, null)
  t.ok(fake.tasks.has(taskId))
  const state = await client.query(taskId)
  t.equal(state.providerStatus, 'pending')
})

t.test('the submit path is configurable: the newer path without /async works, the default then gets a final 404', async (t) => {
  const path = '/api/v1/minimax/minimax-s2v-01'
  const { fake, client } = await setup(t, { submitPath: path }, { submitPath: path })
  const { taskId } = await client.submit(request, null)
  t.ok(fake.tasks.has(taskId))
  t.equal(fake.requests[0]?.path, path)

  const defaultPath = new ModellixClient({ baseUrl: `${fake.url}/`, apiKey: fake.apiKey, timeoutMs: TIMEOUT_MS })
  const err = await failure(defaultPath.submit(request, null))
  t.same([err.kind, err.httpStatus, err.providerCode, err.outcomeUnknown], ['rejected', 404, 404, false])
  t.equal(fake.tasks.size, 1)
})

t.test('400, 401 and 402 are final rejections with Modellix\'s code and message; nothing is created', async (t) => {
  const { fake, client, calls } = await setup(t)
  for (const status of [400, 401, 402]) {
    fake.set({ submitHttpStatus: status })
    const err = await failure(client.submit(request, null))
    t.equal(err.kind, 'rejected', `${status}`)
    t.equal(err.httpStatus, status)
    t.equal(err.providerCode, status)
    t.match(err.providerMessage, /\w+: \w+/, 'Modellix words it "<Category>: <detail>"')
    t.notOk(err.outcomeUnknown)
    t.match(err.message, /trace id [0-9a-f]{32}/)
  }
  fake.set({ submitHttpStatus: null })
  const tooLong = await failure(client.submit({ ...request, prompt: 'x'.repeat(2001) }, null))
  t.same([tooLong.kind, tooLong.httpStatus], ['rejected', 400])
  t.match(tooLong.providerMessage, /prompt/)

  const wrongKey = new ModellixClient({ baseUrl: fake.url, apiKey: 'wrong', timeoutMs: TIMEOUT_MS })
  const unauthorised = await failure(wrongKey.submit(request, null))
  t.same([unauthorised.kind, unauthorised.httpStatus, unauthorised.providerCode], ['rejected', 401, 401])
  t.equal(fake.tasks.size, 0)
  t.ok(calls.every(call => !call.ok && call.operation === 'create'), 'failed calls are reported too')
})

t.test('a 429 is a known, retryable failure with a retry hint from X-RateLimit-Reset, in either form', async (t) => {
  const { fake, client } = await setup(t, { submitHttpStatus: 429, rateLimitResetMs: 2000 })
  const epoch = await failure(client.submit(request, null))
  t.same([epoch.kind, epoch.httpStatus, epoch.outcomeUnknown], ['http', 429, false])
  t.ok(epoch.retryAfterMs !== null && epoch.retryAfterMs > 0 && epoch.retryAfterMs <= 3000, `epoch seconds: ${epoch.retryAfterMs}`)

  fake.set({ rateLimitResetStyle: 'seconds', rateLimitResetMs: 5000 })
  const seconds = await failure(client.submit(request, null))
  t.equal(seconds.retryAfterMs, 5000, 'seconds to wait')
  t.equal(fake.tasks.size, 0)

  let headers: Record<string, string> = {}
  const url = await rawServer(t, (_req, res) => { res.writeHead(429, headers).end('{"code":429,"message":"Rate limit exceeded: slow down"}') })
  const raw = new ModellixClient({ baseUrl: url, apiKey: 'k', timeoutMs: TIMEOUT_MS })
  t.equal((await failure(raw.query('task-1'))).retryAfterMs, null, 'no header, no hint')
  headers = { 'retry-after': '7' }
  t.equal((await failure(raw.query('task-1'))).retryAfterMs, 7000, 'Retry-After when X-RateLimit-Reset is missing')
  headers = { 'x-ratelimit-reset': String(Date.now() + 1500) }
  const ms = (await failure(raw.query('task-1'))).retryAfterMs
  t.ok(ms !== null && ms > 1000 && ms <= 1500, `epoch milliseconds: ${ms}`)
})

t.test('5xx, resets and timeouts after a submit was sent leave the outcome unknown; a refused connection does not', async (t) => {
  const { fake, client } = await setup(t, {}, { timeoutMs: SHORT_TIMEOUT_MS })
  for (const status of [500, 503]) {
    fake.set({ submitHttpStatus: status })
    const err = await failure(client.submit(request, null))
    t.same([err.kind, err.httpStatus, err.outcomeUnknown], ['http', status, true], `${status}`)
  }

  fake.set({ submitHttpStatus: null, submitResetConnection: true })
  const reset = await failure(client.submit(request, null))
  t.same([reset.kind, reset.outcomeUnknown], ['broken', true])
  t.equal(fake.tasks.size, 1, 'the fake did create the task: "unknown" was the right answer')

  fake.set({ submitResetConnection: false, submitDelayMs: SLOW_ANSWER_MS })
  const timeout = await failure(client.submit(request, null))
  t.same([timeout.kind, timeout.outcomeUnknown], ['timeout', true])

  const closed = new ModellixClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, apiKey: 'k', timeoutMs: TIMEOUT_MS })
  const refused = await failure(closed.submit(request, null))
  t.same([refused.kind, refused.outcomeUnknown], ['unreachable', false])
})

t.test('a 200 with a refusal in its envelope is "rejected"; an answer that is not the envelope is "broken"', async (t) => {
  let answer = '{"code":1008,"message":"Payment required: insufficient balance"}'
  const url = await rawServer(t, (_req, res) => { res.writeHead(200, { 'x-request-id': 'req-1' }).end(answer) })
  const client = new ModellixClient({ baseUrl: url, apiKey: 'k', timeoutMs: TIMEOUT_MS })

  const coded = await failure(client.submit(request, null))
  t.same([coded.kind, coded.providerCode, coded.providerMessage, coded.traceId], ['rejected', 1008, 'Payment required: insufficient balance', 'req-1'])
  answer = '{"success":false,"message":"Invalid parameters: no"}'
  const unsuccessful = await failure(client.submit(request, null))
  t.same([unsuccessful.kind, unsuccessful.providerMessage, unsuccessful.outcomeUnknown], ['rejected', 'Invalid parameters: no', false])

  for (const body of ['not json', '{"data":{"task_id":"task-1"}}', '{"code":0,"message":"success"}', '{"code":0,"data":{"status":"pending"}}']) {
    answer = body
    const err = await failure(client.submit(request, null))
    t.equal(err.kind, 'broken', body)
    t.ok(err.outcomeUnknown, 'a 200 we cannot read may still have created the task')
  }
  answer = '{"code":0,"data":{"task_id":"task-0012345678901234567890"}}'
  t.equal((await client.submit(request, null)).taskId, 'task-0012345678901234567890', 'ids stay strings')
})

t.test('a task is polled through pending and processing to success, with its video link and expiry', async (t) => {
  const { fake, client, calls } = await setup(t)
  const { taskId } = await client.submit(request, null)
  const seen = await pollToEnd(client, taskId)
  const words = [...new Set(seen.map(s => s.providerStatus))]
  t.same(words, ['pending', 'processing', 'success'])
  t.ok(seen.slice(0, -1).every(s => s.video === null && s.error === null), 'no video before success')

  const done = seen.at(-1) as ProviderTaskState
  t.equal(done.fileId, null)
  t.equal(done.error, null)
  t.match(done.traceId, /^[0-9a-f]{32}$/)
  t.equal(done.video?.url, fake.fileUrl(taskId))
  const expires = Number(new URL(done.video?.url ?? '').searchParams.get('Expires'))
  t.equal(done.video?.expiresAt, new Date(expires * 1000).toISOString(), 'the expiry is read from the URL')
  t.same([done.video?.width, done.video?.height], [null, null])

  const link = await client.videoLink(taskId, null)
  t.same(link, done.video)
  const download = await fetch(link.url)
  t.equal(download.status, 200)
  t.same(Buffer.from(await download.arrayBuffer()), fakeVideoBytes(taskId))

  t.same([...new Set(calls.map(c => c.operation))], ['create', 'query', 'retrieve'])
  t.ok(calls.every(c => c.ok && c.provider === 'modellix'))
  const gets = fake.requests.filter(r => r.method === 'GET' && r.path === `/api/v1/tasks/${taskId}`)
  t.equal(gets.length, seen.length + 1, 'one request per query, one for the link')
})

t.test('a failed task carries Modellix\'s reason and no video; asking for its video is a rejection', async (t) => {
  const { client } = await setup(t, { finalStatus: 'failed', failureCode: 500, failureMessage: 'Generation failed: no face' })
  const { taskId } = await client.submit(request, null)
  const done = (await pollToEnd(client, taskId)).at(-1) as ProviderTaskState
  t.equal(done.providerStatus, 'failed')
  t.same(done.error, { code: '500', message: 'Generation failed: no face' })
  t.equal(done.video, null)
  const err = await failure(client.videoLink(taskId, null))
  t.same([err.kind, err.outcomeUnknown], ['rejected', false])
  t.match(err.message, /no video.*failed/)
})

t.test('the official client\'s other words come through as sent: completed/succeeded with a video, canceled/error with a reason', async (t) => {
  const { fake, client } = await setup(t)
  for (const word of ['completed', 'succeeded']) {
    fake.set({ finalWord: word, finalStatus: 'success' })
    const { taskId } = await client.submit(request, null)
    const done = (await pollToEnd(client, taskId)).at(-1) as ProviderTaskState
    t.equal(done.providerStatus, word)
    t.equal(done.video?.url, fake.fileUrl(taskId))
    t.equal(done.error, null)
  }
  for (const word of ['canceled', 'cancelled', 'error']) {
    fake.set({ finalWord: word, finalStatus: 'failed' })
    const { taskId } = await client.submit(request, null)
    const done = (await pollToEnd(client, taskId)).at(-1) as ProviderTaskState
    t.equal(done.providerStatus, word)
    t.equal(done.video, null)
    t.ok(done.error?.message, `${word} has a reason`)
  }
})

t.test('query errors: an unknown task is a final 404, 429/5xx are retryable, a refused connection is unreachable', async (t) => {
  // A task that stays pending for the whole test, however slow the machine.
  const { fake, client, calls } = await setup(t, { stepMs: 60_000 })
  const unknown = await failure(client.query('task-nope'))
  t.same([unknown.kind, unknown.httpStatus, unknown.providerCode], ['rejected', 404, 404])
  t.match(unknown.providerMessage, /task not found/)

  const { taskId } = await client.submit(request, null)
  fake.set({ queryHttpStatus: 429, rateLimitResetStyle: 'seconds', rateLimitResetMs: 3000 })
  const limited = await failure(client.query(taskId))
  t.same([limited.kind, limited.httpStatus, limited.retryAfterMs], ['http', 429, 3000])
  for (const status of [500, 503]) {
    fake.set({ queryHttpStatus: status })
    const err = await failure(client.query(taskId))
    t.same([err.kind, err.httpStatus], ['http', status])
  }
  fake.set({ queryHttpStatus: null })
  t.equal((await client.query(taskId)).providerStatus, 'pending')
  t.same(calls.map(c => c.ok), [false, true, false, false, false, true])

  const closed = new ModellixClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, apiKey: 'k', timeoutMs: TIMEOUT_MS })
  const refused = await failure(closed.query(taskId))
  t.same([refused.kind, refused.outcomeUnknown], ['unreachable', false])
})

t.test('the task id is put in the path encoded, never parsed', async (t) => {
  const paths: string[] = []
  const url = await rawServer(t, (req, res) => {
    paths.push(req.url ?? '')
    res.writeHead(200).end('{"code":0,"message":"success","data":{"status":"processing","task_id":"task-a/b c"}}')
  })
  const client = new ModellixClient({ baseUrl: url, apiKey: 'k', timeoutMs: TIMEOUT_MS })
  t.equal((await client.query('task-a/b c')).providerStatus, 'processing')
  t.same(paths, ['/api/v1/tasks/task-a%2Fb%20c'])
  const other = await failure(client.query('task-other'))
  t.equal(other.kind, 'broken', 'an answer about another task is not trusted')
})

t.test('the video is the first resource of type video (else the first with a URL), with its size when given', async (t) => {
  let data: unknown = {}
  const url = await rawServer(t, (_req, res) => { res.writeHead(200).end(JSON.stringify({ code: 0, message: 'success', data })) })
  const client = new ModellixClient({ baseUrl: url, apiKey: 'k', timeoutMs: TIMEOUT_MS })
  const video = 'https://cdn.example/v.mp4?X-Amz-Date=20300101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=x'
  data = {
    status: 'success',
    result: { resources: [{ type: 'image', url: 'https://cdn.example/cover.jpg' }, { type: 'video', format: 'mp4', url: video, width: 1280, height: 720 }] }
  }
  t.same((await client.query('task-1')).video, { url: video, expiresAt: '2030-01-01T01:00:00.000Z', width: 1280, height: 720 })

  data = { status: 'success', result: { resources: [{ type: 'video' }, { url: 'https://cdn.example/plain.mp4' }] } }
  const before = Date.now()
  const plain = (await client.query('task-1')).video
  t.equal(plain?.url, 'https://cdn.example/plain.mp4')
  const fallback = Date.parse(plain?.expiresAt ?? '')
  t.ok(fallback >= before + MODELLIX_RESULT_TTL_MS - MODELLIX_EXPIRY_MARGIN_MS && fallback <= Date.now() + MODELLIX_RESULT_TTL_MS - MODELLIX_EXPIRY_MARGIN_MS,
    'without an expiry in the URL: 24 h minus the margin')
  t.ok(MODELLIX_EXPIRY_MARGIN_MS > 0 && MODELLIX_EXPIRY_MARGIN_MS <= 2 * HOUR_MS)

  data = { status: 'success', result: { resources: [] } }
  t.equal((await client.query('task-1')).video, null)
  t.equal((await failure(client.videoLink('task-1', null))).kind, 'rejected')

  data = { status: 'failed', error_message: 'Content violation: blocked' }
  t.same((await client.query('task-1')).error, { code: 'provider_failed', message: 'Content violation: blocked' })
  data = { status: 'failed', error: 'plain words' }
  t.same((await client.query('task-1')).error, { code: 'provider_failed', message: 'plain words' })
  data = { status: 'failed' }
  t.same((await client.query('task-1')).error, { code: 'provider_failed', message: 'Modellix reported the task as failed' })
  data = { task_id: 'task-1' }
  t.equal((await failure(client.query('task-1'))).kind, 'broken', 'no status')
})
