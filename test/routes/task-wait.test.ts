// Long-polls on GET /v1/tasks/:id?wait=N&status=S: prompt answers, timeouts, disconnects, shutdown, and 1,000 at once.
import t from 'tap'
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { build, freePort, seedTask, taskId } from '../helper.js'
import { waitUntil } from '../fixtures/webhook-consumer.js'
import type { App } from '../../src/app.js'

// What a loaded machine may add to an answer's time; far below the 30 s waits that must not happen.
const SLACK_MS = 2000

function push (app: App, token: string, tid: string, status: string) {
  return app.inject({ method: 'POST', url: `/get_callback/${token}`, payload: { task_id: tid, status, file_id: '205258526306433' } })
}

t.test('a long-poll answers within 100 ms of the push that changes the status', async (t) => {
  const app = await build(t)
  // Several rounds, judged by the median: other processes on a shared machine can stall any single one.
  const rounds: number[] = []
  for (let round = 0; round < 5; round++) {
    const tid = taskId()
    const { id, token } = await seedTask(app.taskStore, { task_id: tid })
    let answeredAt = 0
    const waiting = app.inject(`/v1/tasks/${id}?wait=30&status=processing`).then((res) => { answeredAt = performance.now(); return res })
    await waitUntil('the long-poll waits', () => app.taskWatch.size === 1)
    let committedAt = 0
    app.taskStore.events.once('status', () => { committedAt = performance.now() })
    await push(app, token, tid, 'success')
    const res = await waiting
    // From the commit: the push's own fsync (DATABASE_SYNCHRONOUS=FULL) is the disk's time, not the long-poll's.
    rounds.push(answeredAt - committedAt)
    t.equal(res.statusCode, 200)
    t.match(res.json(), { id, status: 'success', file_id: '205258526306433', events: Array })
    t.equal(app.taskWatch.size, 0, 'nothing left waiting')
  }
  const median = [...rounds].sort((a, b) => a - b)[2]!
  t.comment(`long-poll answered ${rounds.map((ms) => ms.toFixed(1)).join(', ')} ms after the push was committed`)
  t.ok(median < 100, `answered a median ${median.toFixed(1)} ms after the push`)
})

t.test('a long-poll times out with the current state; a different or final status answers at once', async (t) => {
  const app = await build(t)
  const tid = taskId()
  const { id, token } = await seedTask(app.taskStore, { task_id: tid })
  let started = performance.now()
  const timedOut = await app.inject(`/v1/tasks/${id}?wait=1&status=processing`)
  const waited = performance.now() - started
  t.ok(waited >= 990 && waited < 1000 + SLACK_MS, `waited ${waited.toFixed(0)} ms for wait=1`)
  t.equal(timedOut.json().status, 'processing')

  started = performance.now()
  t.equal((await app.inject(`/v1/tasks/${id}?wait=30&status=submitting`)).json().status, 'processing', 'already different')
  t.ok(performance.now() - started < SLACK_MS, 'no wait')

  const withoutStatus = app.inject(`/v1/tasks/${tid}?wait=30`)
  await waitUntil('waiting for any change', () => app.taskWatch.size === 1)
  await push(app, token, tid, 'Fail')
  t.equal((await withoutStatus).json().status, 'failed', 'without status: the next change, by MiniMax\'s id too')

  started = performance.now()
  t.equal((await app.inject(`/v1/tasks/${id}?wait=30&status=failed`)).json().status, 'failed', 'a final status never changes: no wait')
  t.ok(performance.now() - started < SLACK_MS, 'no wait')
})

t.test('long-poll parameters are validated', async (t) => {
  const app = await build(t)
  const { id } = await seedTask(app.taskStore, { task_id: taskId() })
  for (const query of ['wait=61', 'wait=-1', 'wait=abc', 'wait=1.5', 'status=done', 'extra=1']) {
    const res = await app.inject(`/v1/tasks/${id}?${query}`)
    t.equal(res.statusCode, 400, query)
    t.equal(res.json().code, 'invalid_request', query)
  }
  t.equal((await app.inject(`/v1/tasks/${id}?wait=0&status=processing`)).statusCode, 200, 'wait=0 answers at once')
  t.equal((await app.inject('/v1/tasks/unknown?wait=5')).statusCode, 404)
})

t.test('a client that leaves stops waiting; closing the app answers the waiting ones at once', async (t) => {
  const app = await build(t)
  const port = await freePort()
  await app.listen({ port, host: '127.0.0.1' })
  const { id } = await seedTask(app.taskStore, { task_id: taskId() })
  // node:http without keep-alive: a client that really goes away (undici would keep a spare connection open).
  const get = (path: string) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent: false })
    const answer = new Promise<{ status: number, body: string }>((resolve, reject) => {
      request.on('response', (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { body += chunk })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      request.on('error', reject)
    })
    return { request, answer }
  }
  const leaving = get(`/v1/tasks/${id}?wait=30&status=processing`)
  leaving.answer.catch(() => {})
  await waitUntil('waiting', () => app.taskWatch.size === 1)
  leaving.request.destroy()
  await waitUntil('the listener and timer are gone', () => app.taskWatch.size === 0)

  const staying = get(`/v1/tasks/${id}?wait=30&status=processing`)
  await waitUntil('waiting again', () => app.taskWatch.size === 1)
  const started = performance.now()
  await app.close()
  const took = performance.now() - started
  t.ok(took < 1000, `a 30 s long-poll did not hold the shutdown (close took ${took.toFixed(0)} ms)`)
  const res = await staying.answer
  t.equal(res.status, 200)
  t.equal(JSON.parse(res.body).status, 'processing', 'answered with the current state')
})

t.test('1,000 concurrent long-polls hold, challenges stay fast, and one push answers them all', async (t) => {
  // One caller holding 1,000 waits: the per-caller cap (100 by default) is raised for this test.
  const app = await build(t, { READ_RATE_LIMIT: '100000', MAX_WAITERS_PER_CALLER: '1000' })
  const port = await freePort()
  await app.listen({ port, host: '127.0.0.1' })
  const tid = taskId()
  const { id, token } = await seedTask(app.taskStore, { task_id: tid })
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
  t.teardown(() => agent.destroy())
  const request = (method: string, path: string, body?: string) => new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
  const challengeLatencies = async (count: number) => {
    const times: number[] = []
    for (let i = 0; i < count; i++) {
      const started = performance.now()
      const res = await request('POST', '/get_callback', JSON.stringify({ challenge: `c${i}` }))
      times.push(performance.now() - started)
      if (res.status !== 200) throw new Error(`challenge answered ${res.status}`)
    }
    times.sort((a, b) => a - b)
    return { p50: times[Math.floor(count * 0.5)]!, p99: times[Math.floor(count * 0.99)]!, max: times.at(-1)! }
  }

  await challengeLatencies(20) // warm-up
  const idle = await challengeLatencies(200)
  const polls = Array.from({ length: 1000 }, () => request('GET', `/v1/tasks/${id}?wait=30&status=processing`))
  await waitUntil('1,000 long-polls wait', () => app.taskWatch.size === 1000, 10_000)
  const busy = await challengeLatencies(200)
  const fmt = (l: typeof idle) => `p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, max ${l.max.toFixed(2)} ms`
  t.comment(`challenge latency idle: ${fmt(idle)}; with 1,000 long-polls waiting: ${fmt(busy)}`)
  t.ok(busy.p99 < 250, 'challenges still answer quickly (a loose bound; the benchmark measures precisely)')

  const pushed = performance.now()
  await push(app, token, tid, 'success')
  const answers = await Promise.all(polls)
  t.comment(`all 1,000 long-polls answered ${(performance.now() - pushed).toFixed(0)} ms after the push`)
  t.ok(answers.every((answer) => answer.status === 200 && JSON.parse(answer.body).status === 'success'), 'every one saw success')
  t.equal(app.taskWatch.size, 0)
})

t.test('1,000 long-polls of one push are answered from one serialisation: one history read, one signed link, the same bytes', async (t) => {
  const app = await build(t, { API_TOKENS: 'alice:alice-token,bob:bob-token', ADMIN_TOKENS: 'ops:ops-token', MAX_WAITERS_PER_CALLER: '1000' })
  const tid = taskId()
  const { id, token } = await seedTask(app.taskStore, { task_id: tid, caller: 'alice' })
  const as = (who: string) => ({ authorization: `Bearer ${who}-token` })
  const url = `/v1/tasks/${id}?wait=30&status=processing`
  // The owner and an operator: both may see the task, so both are answered with what the task is.
  const polls = Array.from({ length: 1000 }, (_, i) => app.inject({ url, headers: as(i % 2 === 0 ? 'alice' : 'ops') }))
  await waitUntil('1,000 long-polls wait', () => app.taskWatch.size === 1000)
  t.equal((await app.inject({ url, headers: as('bob') })).statusCode, 404, 'another caller does not even learn the task exists')

  const repo = app.taskStore.queries
  const latestEvents = repo.latestEvents.bind(repo)
  let historyReads = 0
  repo.latestEvents = (...args) => { historyReads += 1; return latestEvents(...args) }
  const links = app.downloadLinks
  const forLookup = links.forLookup
  let signed = 0
  links.forLookup = (row) => { signed += 1; return forLookup(row) }
  t.teardown(() => { repo.latestEvents = latestEvents; links.forLookup = forLookup })

  await push(app, token, tid, 'success')
  const answers = await Promise.all(polls)
  t.equal(historyReads, 1, 'the events were read once')
  t.equal(signed, 1, 'the download link was signed once (one expiry for all)')
  t.ok(answers.every((res) => res.statusCode === 200 && res.body === answers[0]!.body), 'every poll got the same bytes')
  t.equal(new Set(answers.map((res) => res.headers['x-request-id'])).size, 1000, 'each with its own request id')
  t.match(answers[0]!.headers['content-type'], /^application\/json; charset=utf-8$/)
  // The route's own response schema made them: the same fields as a plain lookup's.
  const plain = await app.inject({ url: `/v1/tasks/${id}`, headers: as('alice') })
  const shared = JSON.parse(answers[0]!.body)
  t.same(Object.keys(shared), Object.keys(plain.json()))
  t.match(shared, { id, status: 'success', file_id: '205258526306433', video: { download_url: String }, events_total: plain.json().events_total })
})

t.test('waits are capped per caller and in total: beyond, 429 too_many_waiters with Retry-After', async (t) => {
  // Operators, so the seeded tasks are visible to all three; each is still its own caller for the caps.
  const app = await build(t, { API_TOKENS: 'nobody:unused-token', ADMIN_TOKENS: 'alice:alice-token,bob:bob-token,carol:carol-token', MAX_WAITERS_PER_CALLER: '3', MAX_WAITERS: '5' })
  const tid = taskId()
  const { id, token } = await seedTask(app.taskStore, { task_id: tid })
  const done = await seedTask(app.taskStore, { task_id: taskId() })
  await push(app, done.token, (await app.taskStore.queries.byId(done.id))!.task_id!, 'success')
  const as = (who: string) => ({ authorization: `Bearer ${who}-token` })
  const longPoll = (who: string) => app.inject({ url: `/v1/tasks/${id}?wait=30&status=processing`, headers: as(who) })

  const alice = [longPoll('alice'), longPoll('alice'), longPoll('alice')]
  await waitUntil('alice waits three times', () => app.taskWatch.size === 3)
  const refused = await longPoll('alice')
  t.equal(refused.statusCode, 429, 'a fourth wait of the same caller')
  t.equal(refused.json().code, 'too_many_waiters')
  t.equal(refused.headers['retry-after'], '1')
  const stream = await app.inject({ url: `/v1/tasks/${id}/events`, headers: as('alice') })
  t.equal(stream.statusCode, 429, 'an event stream counts against the same cap')
  t.equal(stream.json().code, 'too_many_waiters')
  const atOnce = await app.inject({ url: `/v1/tasks/${done.id}?wait=30`, headers: as('alice') })
  t.equal(atOnce.statusCode, 200, 'a wait that answers at once (a finished task) needs no slot')
  t.equal((await app.inject({ url: `/v1/tasks/${id}`, headers: as('alice') })).statusCode, 200, 'nor does a plain lookup')

  const bob = [longPoll('bob'), longPoll('bob')]
  await waitUntil('five wait in all', () => app.taskWatch.size === 5)
  const full = await longPoll('carol')
  t.equal(full.statusCode, 429, 'a caller with no wait of its own is refused once MAX_WAITERS are open')
  t.match(full.json(), { code: 'too_many_waiters', message: /MAX_WAITERS/ })
  t.equal(app.taskWatch.admitted, 5)

  // The push answers every wait, and the slots come back.
  await push(app, token, tid, 'processing') // a duplicate: no change, nobody answered
  t.equal(app.taskWatch.size, 5)
  await push(app, token, tid, 'success')
  const answers = await Promise.all([...alice, ...bob])
  t.ok(answers.every((res) => res.statusCode === 200 && res.json().status === 'success'), 'every wait answered by the push')
  t.equal(app.taskWatch.admitted, 0, 'every slot given back')
  const next = await seedTask(app.taskStore, { task_id: taskId() })
  const again = app.inject({ url: `/v1/tasks/${next.id}?wait=1&status=processing`, headers: as('carol') })
  await waitUntil('carol may wait now', () => app.taskWatch.size === 1)
  t.equal((await again).statusCode, 200)
  t.equal(app.taskWatch.admitted, 0, 'a timed-out wait gives its slot back too')
})
