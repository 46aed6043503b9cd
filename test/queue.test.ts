// The submit queue end to end against the fake MiniMax enforcing its create limit: bursts, fairness, kill -9.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startFakeMiniMax } from './fixtures/fake-minimax.js'
import { freePort, getJson, postJson, startStack, submitBody, tempDir, startBuiltServer } from './helper.js'

// The providers count a minute; the tests count a shorter window with the same names, so a 60-create proof takes seconds.
const WINDOW_MS = 3000
const RPM = 60
const TOKENS = ['token-a', 'token-b', 'token-c']
const SERVER = join(import.meta.dirname, '..', 'dist', 'server.js')

const auth = (token: string) => ({ authorization: `Bearer ${token}` })

/** The most creates the fake accepted in any window of windowMs (its own arrival timestamps). */
function maxInWindow (times: number[], windowMs: number): number {
  let most = 0
  for (let i = 0, j = 0; j < times.length; j++) {
    while (times[j]! - times[i]! >= windowMs) i++
    most = Math.max(most, j - i + 1)
  }
  return most
}

/** The task as its own caller sees it (callers are isolated: another caller's task is a 404). */
async function lookup (url: string, id: string): Promise<any> {
  for (const token of TOKENS) {
    const res = await getJson(`${url}/v1/tasks/${id}`, auth(token))
    if (res.status === 200) return res.body
  }
  return undefined
}

async function waitForAll (url: string, ids: string[], status: string, timeoutMs: number): Promise<Map<string, any>> {
  const deadline = Date.now() + timeoutMs
  const done = new Map<string, any>()
  while (done.size < ids.length && Date.now() < deadline) {
    for (const id of ids) {
      if (done.has(id)) continue
      const task = await lookup(url, id)
      if (task?.status === status) done.set(id, task)
    }
    if (done.size < ids.length) await sleep(100)
  }
  return done
}

t.test('a burst of 60 submits from three callers: every one answered 200/202, none refused by the fake, within the rate, all succeed, interleaved', async (t) => {
  const stack = await startStack(t, {
    env: { API_TOKENS: TOKENS.join(','), MINIMAX_SUBMIT_RPM: String(RPM), SUBMIT_RPM_WINDOW_MS: String(WINDOW_MS), SUBMIT_RATE_LIMIT: '1000' },
    // 2045 too if two creates ever came closer than half the even spacing: the dispatcher must never trip either.
    behaviour: { createRpm: RPM, createRpmWindowMs: WINDOW_MS, createBurstMs: Math.floor(WINDOW_MS / RPM / 2) }
  })
  const started = Date.now()
  const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => postJson(`${stack.url}/v1/video_generation`, submitBody({ metadata: { n: i } }), auth(TOKENS[i % 3]!))))
  t.same([...new Set(answers.map((a) => a.status))].sort(), [200, 202], 'answered 200 (sent at once) or 202 (queued)')
  const queued = answers.filter((a) => a.status === 202)
  t.ok(queued.length >= 55, `${queued.length} queued`)
  for (const answer of queued) t.match(answer.body, { status: 'queued', task_id: answer.body.id, queue: { position: Number, eta_s: Number } })

  const ids = answers.map((a) => a.body.id as string)
  const done = await waitForAll(stack.url, ids, 'success', 30_000)
  const elapsed = Date.now() - started
  t.equal(done.size, 60, 'every task ends success')
  t.equal(stack.fake.refusedCreates.length, 0, 'zero creates refused by the fake')
  t.equal(stack.fake.tasks.size, 60, 'each created exactly once')
  const most = maxInWindow(stack.fake.createTimes, WINDOW_MS)
  t.ok(most <= RPM, `at most ${RPM} creates in any ${WINDOW_MS} ms window (the fake saw ${most})`)
  // Interleaved: in the order the fake received them, no caller has two creates in a row while others still wait.
  const callerOf = new Map(answers.map((a, i) => [a.body.id, i % 3]))
  const order = [...done.values()].sort((a, b) => a.events.find((e: any) => e.outcome === 'dispatched' || e.outcome === 'created').at.localeCompare(b.events.find((e: any) => e.outcome === 'dispatched' || e.outcome === 'created').at))
  const sequence = order.map((task) => callerOf.get(task.id))
  const runs = sequence.filter((caller, i) => i > 0 && caller === sequence[i - 1]).length
  t.ok(runs <= 2, `the three callers' tasks are interleaved (${runs} back-to-back pairs in ${sequence.join('')})`)
  const gaps = stack.fake.createTimes.slice(1).map((at, i) => at - stack.fake.createTimes[i]!)
  t.comment(`60 tasks in ${elapsed} ms; creates at least ${Math.min(...gaps)} ms apart (window ${WINDOW_MS} ms / ${RPM}); most in a window: ${most}`)
  const metrics = await (await fetch(`${stack.url}/metrics`, { headers: auth(TOKENS[0]!) })).text()
  t.match(metrics, /s2v_provider_creates_total\{provider="minimax"\} 60/)
  t.match(metrics, /s2v_queue_wait_seconds_count\{provider="minimax"\} 60/)
})

t.test('a caller with 500 queued tasks does not delay another caller\'s single submit by more than one turn', async (t) => {
  const stack = await startStack(t, {
    env: { API_TOKENS: TOKENS.join(','), MINIMAX_SUBMIT_RPM: '1', SUBMIT_RPM_WINDOW_MS: '4000', SUBMIT_RATE_LIMIT: '10000' },
    behaviour: { pushes: 'none' }
  })
  const flood: Array<{ status: number, body: any }> = []
  for (let batch = 0; batch < 10; batch++) {
    flood.push(...await Promise.all(Array.from({ length: 50 }, () => postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[0]!)))))
  }
  const queuedBefore = await stack.app.taskStore.queries.queuedOfCaller(flood[0]!.body.id ? (await stack.app.taskStore.queries.byId(flood[0]!.body.id))!.caller : '')
  t.ok(queuedBefore >= 495, `${queuedBefore} of the first caller's 500 tasks queued`)
  const createsBefore = stack.fake.tasks.size
  const single = await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth(TOKENS[1]!))
  t.equal(single.status, 202)
  t.equal(single.body.queue.position, 1, 'the second caller is next: position 1, ahead of the first caller\'s queue')
  const last = (await getJson(`${stack.url}/v1/tasks/${flood.at(-1)!.body.id}`, auth(TOKENS[0]!))).body
  t.ok(last.queue.position > 400, `the flood's last task comes far behind it (position ${last.queue.position}, eta ${last.queue.eta_s} s)`)
  // The next slot (at most one interval, 4.25 s, away) goes to the second caller: within one turn, whatever was in flight.
  await stack.fake.waitFor(() => stack.fake.tasks.size >= createsBefore + 2, 15_000)
  const next = [...stack.fake.tasks.values()].slice(createsBefore, createsBefore + 2).map((task) => task.task_id)
  const second = (await getJson(`${stack.url}/v1/tasks/${single.body.id}`, auth(TOKENS[1]!))).body
  t.ok(next.includes(second.task_id), 'one of the next two creates (one turn) was the second caller\'s task')
})

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  t.test(`the same burst with the service stopped by ${signal} halfway and restarted: each task created exactly once`, { skip: existsSync(SERVER) ? false : 'run `npm run build` first (npm test does)' }, async (t) => {
    const fake = await startFakeMiniMax({ behaviour: { pushDelayMs: 10, createRpm: RPM, createRpmWindowMs: WINDOW_MS } })
    t.teardown(() => fake.close())
    const port = String(await freePort())
    const url = `http://127.0.0.1:${port}`
    const env = {
      PORT: port,
      HOST: '127.0.0.1',
      DATABASE_PATH: join(tempDir(t), 's2v.db'),
      PUBLIC_BASE_URL: url,
      MINIMAX_BASE_URL: fake.url,
      MINIMAX_API_KEY: fake.apiKey,
      API_TOKENS: TOKENS.join(','),
      MINIMAX_SUBMIT_RPM: String(RPM),
      SUBMIT_RPM_WINDOW_MS: String(WINDOW_MS),
      SUBMIT_RATE_LIMIT: '1000',
      SHUTDOWN_GRACE_MS: '5000',
      // Pushes sent while the service was down are lost: the reconciler's polls (quick here) finish those tasks.
      RECONCILE_AFTER_MS: '300',
      RECONCILE_BACKOFF_MS: '300',
      RECONCILE_TICK_MS: '100',
      MINIMAX_POLL_BUDGET: '1000'
    }
    const first = await startBuiltServer(t, SERVER, env)
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => postJson(`${url}/v1/video_generation`, submitBody({ prompt: `burst ${i}` }), auth(TOKENS[i % 3]!))))
    t.ok(answers.every((a) => a.status === 200 || a.status === 202), 'every submit answered 200 or 202')
    await fake.waitFor(() => fake.createTimes.length >= 30, 20_000)
    first.kill(signal)
    await new Promise((resolve) => first.exitCode !== null || first.signalCode !== null ? resolve(null) : first.once('exit', resolve))
    const before = fake.createTimes.length
    t.ok(before >= 30 && before < 60, `${before} of 60 created before the stop`)

    await startBuiltServer(t, SERVER, env)
    const done = await waitForAll(url, answers.map((a) => a.body.id), 'success', 20_000)
    const createsOf = new Map<string, number>()
    for (const task of fake.tasks.values()) {
      const prompt = (task.body as { prompt: string }).prompt
      createsOf.set(prompt, (createsOf.get(prompt) ?? 0) + 1)
    }
    t.ok([...createsOf.values()].every((n) => n === 1), 'no task was created twice')
    const left = answers.map((a, i) => ({ id: a.body.id as string, prompt: `burst ${i}` })).filter(({ id }) => !done.has(id))
    const leftTasks = await Promise.all(left.map(async ({ id }) => lookup(url, id)))
    t.comment(`${done.size} success; not finished: ${leftTasks.map((task) => `${task.status}/${task.events.map((e: any) => e.outcome).join(',')}`).join('; ') || 'none'}`)
    // A create in flight at a kill -9 has an unknown outcome: it stays submitting (never sent again) until a push or SUBMITTING_TIMEOUT_MS.
    t.ok(left.length <= (signal === 'SIGKILL' ? 1 : 0), `every task ends success except at most the one in flight at a kill -9 (${left.length} not)`)
    for (const task of leftTasks) t.equal(task.status, 'submitting', 'an unknown outcome stays submitting')
    t.equal(fake.refusedCreates.length, 0, 'the restart did not burst past the fake\'s limit')
  })
}
