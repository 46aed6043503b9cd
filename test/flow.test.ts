// The whole flow over real sockets: our service + the fake MiniMax, challenge first, then pushes.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, getJson, postJson, startStack, submitBody, type Stack } from './helper.js'

const creates = (stack: Stack) => stack.fake.requests.filter((request) => request.method === 'POST' && request.path === '/v1/video_generation').length

async function waitForStatus (stack: Stack, id: string, statuses: string[], timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { body } = await getJson(`${stack.url}/v1/tasks/${id}`)
    if (statuses.includes(body.status)) return body
    if (Date.now() > deadline) throw new Error(`task ${id} still ${body.status} after ${timeoutMs} ms`)
    await sleep(20)
  }
}

const outcomes = (task: { events: Array<{ source: string, outcome: string }> }) => task.events.map((event) => `${event.source}:${event.outcome}`)

t.test('submit → challenge → pushes → lookup', async (t) => {
  // The first push a little after the create's answer, so the history's order below is the flow's, not a race.
  const stack = await startStack(t, { behaviour: { pushDelayMs: 100 } })
  const res = await postJson(`${stack.url}/v1/video_generation`, submitBody({ metadata: { ticket: 'T-1' } }))
  t.equal(res.status, 200)
  t.match(res.body, { task_id: /^\d{18}$/, id: String, status: 'processing', base_resp: { status_code: 0, status_msg: 'success' } })
  t.ok(res.headers.get('x-request-id'), 'request id returned')

  t.equal(stack.fake.challenges.length, 1)
  t.ok(stack.fake.challenges[0]!.ok, 'the challenge was echoed')
  t.ok(stack.fake.challenges[0]!.ms < 3000, `echoed in ${stack.fake.challenges[0]!.ms} ms`)
  t.match(stack.fake.challenges[0]!.url, new RegExp(`^${stack.url}/get_callback/${res.body.id}\\.`), 'per-task callback URL under PUBLIC_BASE_URL')
  const fakeTask = stack.fake.tasks.get(res.body.task_id)!
  t.same((fakeTask.body as { callback_url: string, subject_reference: unknown }).subject_reference, submitBody().subject_reference, 'MiniMax got the caller\'s body')

  const task = await waitForStatus(stack, res.body.id, ['success'])
  t.match(task, { task_id: res.body.task_id, file_id: /^\d+$/, metadata: { ticket: 'T-1' }, error: null })
  t.same(outcomes(task), ['submit:created', 'submit:applied', 'callback:duplicate', 'callback:applied'])
  t.ok(stack.fake.pushes.every((push) => push.statusCode === 200), 'every push answered 200')

  const query = await getJson(`${stack.url}/v1/query/video_generation?task_id=${res.body.task_id}`)
  t.same(query.body, { task_id: res.body.task_id, status: 'Success', file_id: task.file_id, base_resp: { status_code: 0, status_msg: 'success' } })
})

t.test('pushes that beat the create answer, duplicates, out-of-order, capitalised, bare-number ids all end right', async (t) => {
  const stack = await startStack(t)
  const scenarios = [
    { name: 'push before create returns', behaviour: { pushBeforeCreateReturns: true } },
    { name: 'duplicates', behaviour: { pushes: 'duplicate' as const } },
    { name: 'out of order', behaviour: { pushes: 'out_of_order' as const } },
    { name: 'capitalised', behaviour: { capitalised: true } },
    { name: 'bare-number task_id', behaviour: { taskIdAsNumber: true } },
    { name: 'failed', behaviour: { finalStatus: 'failed' as const, failureCode: 1027, capitalised: true } }
  ]
  for (const { name, behaviour } of scenarios) {
    stack.fake.reset()
    stack.fake.set({ pushDelayMs: 10, ...behaviour })
    const res = await postJson(`${stack.url}/v1/video_generation`, submitBody())
    t.equal(res.status, 200, name)
    const expected = behaviour.finalStatus ?? 'success'
    const task = await waitForStatus(stack, res.body.id, [expected === 'success' ? 'success' : 'failed'])
    await stack.fake.waitFor(() => stack.fake.pushes.length >= 2 && stack.fake.pushes.every((push) => push.statusCode !== null))
    t.equal(task.task_id, res.body.task_id, `${name}: task_id exact`)
    t.equal(task.status, expected, `${name}: ${expected}`)
    if (expected === 'failed') t.same(task.error, { code: '1027', message: String(task.error.message) }, `${name}: MiniMax's code kept`)
    else t.match(task.file_id, /^\d+$/, `${name}: file_id kept`)
    const after = (await getJson(`${stack.url}/v1/tasks/${res.body.id}`)).body
    t.equal(after.status, expected, `${name}: still ${expected} after every push`)
    t.ok(stack.fake.pushes.every((push) => push.statusCode === 200), `${name}: every push answered 200`)
    if (name === 'push before create returns') {
      t.equal(res.body.status, 'success', 'the create answer reports what the pushes already said')
      t.same(outcomes(after), ['submit:created', 'callback:applied', 'callback:applied', 'submit:out_of_order'])
    }
    if (name === 'duplicates') t.ok(outcomes(after).filter((o) => o === 'callback:duplicate').length >= 2, 'duplicates recorded as such')
    if (name === 'out of order') t.ok(outcomes(after).includes('callback:out_of_order'), 'late processing recorded, status kept')
  }
})

t.test('each MiniMax error code gets its HTTP status, MiniMax\'s base_resp, and a failed task', async (t) => {
  const stack = await startStack(t)
  const expected: Record<number, [number, string]> = {
    1000: [502, 'provider_error'],
    1001: [502, 'provider_error'],
    1004: [502, 'provider_auth_failed'],
    1008: [402, 'insufficient_balance'],
    1013: [502, 'provider_error'],
    1026: [422, 'sensitive_content'],
    1027: [422, 'sensitive_content'],
    2013: [400, 'invalid_params'],
    2049: [502, 'provider_auth_failed']
  }
  for (const [code, [status, ourCode]] of Object.entries(expected)) {
    stack.fake.set({ createErrorCode: Number(code) })
    const res = await postJson(`${stack.url}/v1/video_generation`, submitBody())
    t.equal(res.status, status, `${code} → ${status}`)
    t.match(res.body, { code: ourCode, id: String, status: 'failed', base_resp: { status_code: Number(code), status_msg: String } }, `${code}`)
    t.equal(res.body.request_id, res.headers.get('x-request-id'), `${code}: the body repeats the request id, like every error`)
    const task = (await getJson(`${stack.url}/v1/tasks/${res.body.id}`)).body
    t.match(task, { status: 'failed', error: { code, message: String } }, `${code}: the task is failed with the reason`)
  }
})

t.test('a rate-limit refusal (1002, 1039, 2045, HTTP 429) queues the task instead of failing it, and it is sent once the limit clears', async (t) => {
  const stack = await startStack(t)
  for (const behaviour of [{ createErrorCode: 1002 }, { createErrorCode: 1039 }, { createErrorCode: 2045 }, { createHttpStatus: 429 }]) {
    stack.fake.reset()
    stack.fake.set(behaviour)
    const res = await postJson(`${stack.url}/v1/video_generation`, submitBody())
    t.equal(res.status, 202, `${JSON.stringify(behaviour)} → 202`)
    t.match(res.body, { id: String, task_id: res.body.id, status: 'queued', queue: { position: Number, eta_s: Number }, base_resp: { status_code: 0, status_msg: 'queued' } })
    await stack.fake.waitFor(() => stack.fake.requests.filter((r) => r.path === '/v1/video_generation').length >= 2)
    stack.fake.set({ createErrorCode: null, createHttpStatus: null })
    let task = (await getJson(`${stack.url}/v1/tasks/${res.body.id}`)).body
    for (let i = 0; i < 200 && task.status !== 'success'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25))
      task = (await getJson(`${stack.url}/v1/tasks/${res.body.id}`)).body
    }
    t.equal(task.status, 'success', 'sent again once the provider accepts, and finished')
    t.equal(stack.fake.tasks.size, 1, 'created exactly once')
    t.ok(task.events.some((e: { outcome: string }) => e.outcome === 'rate_limited'), 'the refusal is kept in the history')
  }
})

t.test('unknown outcomes are never retried and stay submitting until a callback resolves them', async (t) => {
  const stack = await startStack(t, { env: { MINIMAX_CREATE_TIMEOUT_MS: '1000' } })
  const cases = [
    { name: 'timeout', behaviour: { createDelayMs: 1500 }, status: 504 },
    { name: 'connection reset', behaviour: { createResetConnection: true }, status: 502 },
    { name: 'HTTP 503', behaviour: { createHttpStatus: 503 }, status: 502 }
  ]
  for (const { name, behaviour, status } of cases) {
    stack.fake.reset()
    stack.fake.set({ pushDelayMs: 10, ...behaviour })
    const res = await postJson(`${stack.url}/v1/video_generation`, submitBody())
    t.equal(res.status, status, name)
    t.match(res.body, { code: 'submit_outcome_unknown', id: String, status: 'submitting', message: /not retried/, request_id: String }, name)
    t.equal(creates(stack), 1, `${name}: one create, no automatic retry`)
    const task = (await getJson(`${stack.url}/v1/tasks/${res.body.id}`)).body
    if (name !== 'HTTP 503') {
      // The fake did create the task: its pushes on the per-task URL resolve the row.
      const resolved = await waitForStatus(stack, res.body.id, ['success'])
      t.match(resolved.task_id, /^\d{18}$/, `${name}: a later push bound the task_id`)
    } else {
      t.equal(task.status, 'submitting', `${name}: still submitting`)
      t.same(outcomes(task), ['submit:created', 'submit:unknown'])
    }
  }
})

t.test('a refused connection fails the task; an unreachable callback URL is reported as our configuration', async (t) => {
  const dead = `http://127.0.0.1:${await freePort()}`
  const unreachable = await startStack(t, { env: { MINIMAX_BASE_URL: dead } })
  const res = await postJson(`${unreachable.url}/v1/video_generation`, submitBody())
  t.equal(res.status, 502)
  t.match(res.body, { code: 'provider_unreachable', status: 'failed' })

  const hidden = await startStack(t, { env: { PUBLIC_BASE_URL: dead }, behaviour: { challengeTimeoutMs: 500 } })
  const check = await postJson(`${hidden.url}/v1/video_generation`, submitBody())
  t.equal(check.status, 502)
  t.match(check.body, { code: 'callback_check_failed', message: /PUBLIC_BASE_URL/, base_resp: { status_code: 2013 } })
})

t.test('Idempotency-Key: one paid generation per key, even for concurrent duplicates', async (t) => {
  const stack = await startStack(t, { behaviour: { createDelayMs: 200 } })
  const send = (body = submitBody(), key = 'order-77') => postJson(`${stack.url}/v1/video_generation`, body, { 'idempotency-key': key })
  const answers = await Promise.all(Array.from({ length: 8 }, () => send()))
  t.equal(creates(stack), 1, 'MiniMax saw one create for eight concurrent requests')
  t.ok(answers.every((answer) => answer.status === 200))
  t.equal(new Set(answers.map((answer) => JSON.stringify(answer.body))).size, 1, 'all got the same answer')
  t.equal(answers.filter((answer) => answer.headers.get('idempotent-replayed') === 'true').length, 7)

  const later = await send()
  t.same(later.body, answers[0]!.body, 'replayed after completion')
  t.equal(creates(stack), 1)

  const changed = await send(submitBody({ prompt: 'something else' }))
  t.equal(changed.status, 422)
  t.equal(changed.body.code, 'idempotency_key_reused')

  const other = await send(submitBody(), 'order-78')
  t.not(other.body.task_id, answers[0]!.body.task_id, 'a new key is a new generation')
  t.equal(creates(stack), 2)

  stack.fake.set({ createErrorCode: 1008, createDelayMs: 0 })
  const failedFirst = await send(submitBody(), 'order-79')
  const failedAgain = await send(submitBody(), 'order-79')
  t.equal(failedAgain.status, 402)
  const { request_id: firstRequest, ...first } = failedFirst.body
  const { request_id: againRequest, ...again } = failedAgain.body
  t.same(again, first, 'a failure is replayed too, not retried')
  t.not(againRequest, firstRequest, 'the replay names its own request')
  t.equal(againRequest, failedAgain.headers.get('x-request-id'))
  t.equal(creates(stack), 3)
})

t.test('a forged push over the network changes nothing', async (t) => {
  const stack = await startStack(t, { behaviour: { pushes: 'half' } })
  const res = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  await waitForStatus(stack, res.body.id, ['processing'])
  await stack.fake.waitFor(() => stack.fake.pushes.length === 1)
  for (const path of ['/get_callback', `/get_callback/${res.body.id}.${'A'.repeat(43)}`]) {
    const forged = await postJson(`${stack.url}${path}`, { task_id: res.body.task_id, status: 'success', file_id: '666' })
    t.equal(forged.status, 401, path.slice(0, 30))
  }
  const task = (await getJson(`${stack.url}/v1/tasks/${res.body.id}`)).body
  t.equal(task.status, 'processing')
  t.equal(task.file_id, null)
})
