// Tests of the fake Modellix server itself, over plain fetch.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { fakeVideoBytes } from './fixtures/fake-minimax.js'
import { DEFAULT_MODELLIX_BEHAVIOUR, FAKE_MODELLIX_MODEL_ID, startFakeModellix } from './fixtures/fake-modellix.js'
import type { FakeModellix, FakeModellixBehaviour } from './fixtures/fake-modellix.js'

const SUBMIT_PATH = '/api/v1/minimax/minimax-s2v-01/async'
const IMAGE = 'https://example.com/face.jpg'
const STEP_MS = 30
const SUBMIT_DELAY_MS = 150

type Json = Record<string, any>
type Reply = { status: number, json: Json, headers: Headers }
type Tap = { teardown: (fn: () => unknown) => void }

async function start (t: Tap, behaviour: Partial<FakeModellixBehaviour> = {}): Promise<FakeModellix> {
  const fake = await startFakeModellix({ behaviour: { stepMs: STEP_MS, ...behaviour } })
  t.teardown(() => fake.close())
  return fake
}

async function call (fake: FakeModellix, method: string, path: string, body?: unknown, key: string | null = fake.apiKey): Promise<Reply> {
  const res = await fetch(`${fake.url}${path}`, {
    method,
    headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) })
  })
  const text = await res.text()
  return { status: res.status, json: text === '' ? {} : JSON.parse(text) as Json, headers: res.headers }
}

async function submit (fake: FakeModellix, body: unknown = { subject_reference_images: [IMAGE] }): Promise<Reply> {
  return await call(fake, 'POST', fake.behaviour.submitPath, body)
}

t.test('a submit without the right bearer key gets 401 {code, message}', async (t) => {
  const fake = await start(t)
  for (const key of [null, 'wrong']) {
    const reply = await call(fake, 'POST', SUBMIT_PATH, { subject_reference_images: [IMAGE] }, key)
    t.equal(reply.status, 401)
    t.equal(reply.json.code, 401)
    t.match(reply.json.message, /^Authentication failed: /)
  }
  t.equal((await call(fake, 'GET', '/api/v1/tasks/task-x', undefined, 'wrong')).status, 401, 'queries too')
  t.equal(fake.tasks.size, 0)
})

t.test('the submit body is validated: 1 to 10 http(s) or data:image URLs, a prompt of at most 2000 characters', async (t) => {
  const fake = await start(t)
  const bad: Array<[unknown, RegExp]> = [
    ['{not json', /invalid JSON/],
    [{}, /subject_reference_images' is required/],
    [{ subject_reference_images: [] }, /1 to 10/],
    [{ subject_reference_images: Array(11).fill(IMAGE) }, /1 to 10/],
    [{ subject_reference_images: ['ftp://example.com/a.jpg'] }, /subject_reference_images\[0\]/],
    [{ subject_reference_images: [IMAGE, 'data:text/plain;base64,aGk='] }, /subject_reference_images\[1\]/],
    [{ subject_reference_images: ['data:image/png;base64,***'] }, /subject_reference_images\[0\]/],
    [{ subject_reference_images: [IMAGE], prompt: 'x'.repeat(2001) }, /prompt/],
    [{ subject_reference_images: [IMAGE], prompt: 7 }, /prompt/],
    [{ subject_reference_images: [IMAGE], prompt_optimizer: 'yes' }, /prompt_optimizer/]
  ]
  for (const [body, message] of bad) {
    const reply = await submit(fake, body)
    t.equal(reply.status, 400, JSON.stringify(body).slice(0, 60))
    t.equal(reply.json.code, 400)
    t.match(reply.json.message, message)
  }
  t.equal(fake.tasks.size, 0)
  const ok = await submit(fake, {
    subject_reference_images: [IMAGE, 'data:image/webp;base64,UklGRg==', ...Array(8).fill(IMAGE)],
    prompt: '😀'.repeat(2000),
    prompt_optimizer: true
  })
  t.equal(ok.status, 200, '10 images and 2000 characters (not UTF-16 units) are fine')
})

t.test('a submit answers Modellix\'s envelope with a pending task-... id and where to get the result', async (t) => {
  const fake = await start(t)
  const reply = await submit(fake)
  t.equal(reply.status, 200)
  t.match(reply.headers.get('x-request-id'), /^[0-9a-f]{32}$/)
  t.match(reply.json, { code: 0, message: 'success', data: { status: 'pending', model_id: FAKE_MODELLIX_MODEL_ID } })
  const taskId = reply.json.data.task_id as string
  t.match(taskId, /^task-[0-9a-f]{24}$/)
  t.same(reply.json.data.get_result, { method: 'GET', url: `${fake.url}/api/v1/tasks/${taskId}` })
  t.same(fake.tasks.get(taskId)?.body, { subject_reference_images: [IMAGE] })

  fake.set({ envelope: 'success' })
  const other = await submit(fake)
  t.equal(other.json.success, true)
  t.notOk('code' in other.json)
  t.equal(other.json.data.status, 'pending')
})

t.test('a finished task lists its video resource, served with deterministic bytes until it expires', async (t) => {
  const fake = await start(t)
  const taskId = (await submit(fake)).json.data.task_id as string
  await fake.waitFor(() => fake.tasks.get(taskId)?.status === 'success', 2000)
  const last = (await call(fake, 'GET', `/api/v1/tasks/${taskId}`)).json
  t.match(last, { code: 0, data: { status: 'success', task_id: taskId, model_id: FAKE_MODELLIX_MODEL_ID } })
  const resources = last.data.result.resources as Json[]
  t.equal(resources.length, 1)
  t.match(resources[0], { type: 'video', format: 'mp4' })
  t.equal(resources[0]?.url, fake.fileUrl(taskId))
  const expires = Number(new URL(resources[0]?.url).searchParams.get('Expires'))
  const completedAt = fake.tasks.get(taskId)?.completedAt ?? 0
  t.equal(expires, Math.floor((completedAt + DEFAULT_MODELLIX_BEHAVIOUR.resultTtlMs) / 1000), 'kept 24 hours')

  const video = await fetch(resources[0]?.url)
  t.equal(video.status, 200)
  t.equal(video.headers.get('content-type'), 'video/mp4')
  t.same(Buffer.from(await video.arrayBuffer()), fakeVideoBytes(taskId))
  t.equal((await fetch(resources[0]?.url, { method: 'HEAD' })).status, 200)
  const forged = resources[0]?.url.replace(/Expires=\d+/, 'Expires=1')
  t.equal((await fetch(forged)).status, 403, 'an expired URL is refused')
  t.equal((await fetch(`${fake.url}/files/task-nope.mp4?Expires=9999999999`)).status, 404)
})

t.test('each status shows on its own step', async (t) => {
  const fake = await start(t, { stepMs: 100 })
  const taskId = (await submit(fake)).json.data.task_id as string
  const statuses: string[] = []
  const deadline = Date.now() + 2000
  while (Date.now() < deadline) {
    const status = (await call(fake, 'GET', `/api/v1/tasks/${taskId}`)).json.data.status as string
    if (statuses.at(-1) !== status) statuses.push(status)
    if (status === 'success') break
    await sleep(10)
  }
  t.same(statuses, ['pending', 'processing', 'success'])
})

t.test('with resultTtlMs 0 the result is already gone: its URL answers 403', async (t) => {
  const fake = await start(t, { resultTtlMs: 0, stepMs: 0 })
  const taskId = (await submit(fake)).json.data.task_id as string
  const data = (await call(fake, 'GET', `/api/v1/tasks/${taskId}`)).json.data
  t.equal(data.status, 'success')
  const download = await fetch(data.result.resources[0].url)
  t.equal(download.status, 403)
  t.match(await download.json(), { code: 403 })
})

t.test('failed tasks carry an error and no result; finalWord changes the word sent', async (t) => {
  const fake = await start(t, { stepMs: 0, finalStatus: 'failed', failureCode: 500, failureMessage: 'Generation failed: x' })
  const failed = (await submit(fake)).json.data.task_id as string
  const data = (await call(fake, 'GET', `/api/v1/tasks/${failed}`)).json.data
  t.equal(data.status, 'failed')
  t.same(data.error, { code: 500, message: 'Generation failed: x' })
  t.notOk('result' in data)
  t.equal((await fetch(fake.fileUrl(failed))).status, 404)

  fake.set({ finalStatus: 'success', finalWord: 'succeeded' })
  const done = (await submit(fake)).json.data.task_id as string
  const word = (await call(fake, 'GET', `/api/v1/tasks/${done}`)).json.data
  t.equal(word.status, 'succeeded')
  t.ok(word.result.resources[0].url)
  t.equal(fake.tasks.get(failed)?.status, 'failed', 'a task keeps the behaviour it was submitted under')
})

t.test('submitPath moves the submit endpoint; the old one becomes a 404', async (t) => {
  const fake = await start(t, { submitPath: '/api/v1/minimax/minimax-s2v-01' })
  t.equal((await call(fake, 'POST', '/api/v1/minimax/minimax-s2v-01', { subject_reference_images: [IMAGE] })).status, 200)
  const old = await call(fake, 'POST', SUBMIT_PATH, { subject_reference_images: [IMAGE] })
  t.same([old.status, old.json.code], [404, 404])
  t.equal(fake.tasks.size, 1)
})

t.test('submitHttpStatus answers the error without creating a task; 429 carries rate-limit headers', async (t) => {
  const fake = await start(t)
  for (const status of [400, 401, 402, 500, 503]) {
    fake.set({ submitHttpStatus: status })
    const reply = await submit(fake)
    t.same([reply.status, reply.json.code], [status, status])
    t.equal(reply.headers.get('x-ratelimit-reset'), null)
  }
  fake.set({ submitHttpStatus: 429, rateLimitResetMs: 4000 })
  const before = Math.floor(Date.now() / 1000)
  const limited = await submit(fake)
  t.equal(limited.status, 429)
  t.equal(limited.headers.get('x-ratelimit-remaining'), '0')
  const reset = Number(limited.headers.get('x-ratelimit-reset'))
  t.ok(reset >= before + 4 && reset <= before + 6, `epoch seconds ${reset}`)
  fake.set({ rateLimitResetStyle: 'seconds' })
  t.equal((await submit(fake)).headers.get('x-ratelimit-reset'), '4')
  t.equal(fake.tasks.size, 0)
})

t.test('queryHttpStatus fails queries only', async (t) => {
  const fake = await start(t, { queryHttpStatus: 503 })
  const taskId = (await submit(fake)).json.data.task_id as string
  t.equal((await call(fake, 'GET', `/api/v1/tasks/${taskId}`)).status, 503)
  fake.set({ queryHttpStatus: 429 })
  const limited = await call(fake, 'GET', `/api/v1/tasks/${taskId}`)
  t.equal(limited.status, 429)
  t.ok(limited.headers.get('x-ratelimit-reset'))
  fake.set({ queryHttpStatus: null })
  t.equal((await call(fake, 'GET', `/api/v1/tasks/${taskId}`)).status, 200)
  t.same((await call(fake, 'GET', '/api/v1/tasks/task-unknown')).json, { code: 404, message: 'Not found: task not found' })
})

t.test('a delayed or reset submit has still created its task', async (t) => {
  const fake = await start(t, { submitDelayMs: SUBMIT_DELAY_MS })
  const started = Date.now()
  t.equal((await submit(fake)).status, 200)
  t.ok(Date.now() - started >= SUBMIT_DELAY_MS - 5)

  fake.set({ submitDelayMs: 0, submitResetConnection: true })
  await t.rejects(submit(fake))
  t.equal(fake.tasks.size, 2)
})

t.test('completeTask ends a task at once; reset forgets tasks, requests and behaviour changes', async (t) => {
  const fake = await start(t, { stepMs: 60_000 })
  const taskId = (await submit(fake)).json.data.task_id as string
  t.equal(fake.tasks.get(taskId)?.status, 'pending')
  fake.completeTask(taskId, 'failed')
  t.equal((await call(fake, 'GET', `/api/v1/tasks/${taskId}`)).json.data.status, 'failed')
  t.throws(() => fake.completeTask('task-nope'))

  const control = await fetch(`${fake.url}/_fake/behaviour`, { method: 'POST', body: JSON.stringify({ envelope: 'success' }) })
  t.equal((await control.json() as Json).envelope, 'success')
  const refused = await fetch(`${fake.url}/_fake/behaviour`, { method: 'POST', body: JSON.stringify({ nope: 1 }) })
  t.equal(refused.status, 400)
  t.throws(() => fake.set({ stepMs: -1 }))
  t.throws(() => fake.set({ finalWord: '' }))
  const state = await (await fetch(`${fake.url}/_fake/state`)).json() as Json
  t.match(state, { counts: { tasks: 1 }, tasks: [{ task_id: taskId, status: 'failed' }] })
  t.notOk('body' in state.tasks[0], 'the submit body (maybe a 30 MB data URL) is left out')

  t.ok(fake.requests.length >= 4)
  fake.reset()
  t.equal(fake.tasks.size, 0)
  t.equal(fake.requests.length, 0)
  t.equal(fake.behaviour.envelope, 'code')
  t.equal(fake.behaviour.stepMs, 60_000, 'back to the behaviour it was started with')
})

t.test('every request is counted with its method, path and key', async (t) => {
  const fake = await start(t)
  const taskId = (await submit(fake)).json.data.task_id as string
  await call(fake, 'GET', `/api/v1/tasks/${taskId}`)
  await call(fake, 'GET', `/api/v1/tasks/${taskId}`, undefined, null)
  t.same(fake.requests.map(r => [r.method, r.path, r.authorization]), [
    ['POST', SUBMIT_PATH, `Bearer ${fake.apiKey}`],
    ['GET', `/api/v1/tasks/${taskId}`, `Bearer ${fake.apiKey}`],
    ['GET', `/api/v1/tasks/${taskId}`, null]
  ])
})
