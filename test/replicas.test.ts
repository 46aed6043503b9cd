// Two replicas of the built server on one PostgreSQL, the fake MiniMax pushing through a round-robin proxy in front of
// both: the whole flow, work done once across replicas, a long-poll woken by the other replica, one submit rate for
// both, and kill -9 mid-burst.
import t, { type Test } from 'tap'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ChildProcess } from 'node:child_process'
import { PostgresTaskStorage } from '../src/db/postgres/task-storage.js'
import { TaskStore } from '../src/services/task-store.js'
import { startFakeMiniMax } from './fixtures/fake-minimax.js'
import { startRoundRobinProxy } from './fixtures/round-robin-proxy.js'
import { startWebhookConsumer, waitUntil } from './fixtures/webhook-consumer.js'
import { freePort, getJson, postJson, seedTask, startBuiltServer, submitBody, taskId, tempDir } from './helper.js'
import { havePostgres, openTestPool, startPostgres } from './postgres-cluster.js'

const SERVER = join(import.meta.dirname, '..', 'dist', 'server.js')
// Polls come this soon after news and after a poll without news (the defaults are minutes): a task whose pushes are
// withheld is polled every 0.4-0.8 s, so two replicas polling the same due task would show as two queries far closer.
const POLL_EVERY_MS = 400
// Two queries of one task closer than this were not one reconciler's: it waits POLL_EVERY_MS after each answer.
const MIN_POLL_GAP_MS = 250
// How soon a long-poll on one replica must answer after the other replica acknowledged the push (LISTEN/NOTIFY takes
// milliseconds idle; the bound leaves room for a loaded machine, and stays far below the long-poll's own 10 s, the
// only other way it could answer).
const WAKE_WITHIN_MS = 5000
// The burst of the kill test: tasks, two pushes each, one replica killed after this many of its own acknowledgements.
const BURST_TASKS = 120
const KILL_AFTER_ACKS = 50
// Long enough for every task of a test to finish on a loaded 2-core machine; a healthy run needs a few seconds.
const SETTLE_MS = 20_000
// MiniMax's create limit, shortened: this many creates in any window of this length, shared by both replicas.
const CREATES_PER_WINDOW = 4
const CREATE_WINDOW_MS = 2000

type Replica = { name: 'A' | 'B', url: string, videoDir: string, child: ChildProcess }

if (!existsSync(SERVER)) {
  t.test('two replicas on PostgreSQL', { skip: 'run `npm run build` first (npm test does)' }, () => {})
} else if (havePostgres(t, 'two replicas on PostgreSQL')) {
  // Awaited before the first t.test (see test/postgres-cluster.ts).
  const cluster = await startPostgres(t)
  const databaseUrl = await cluster.freshDatabase()
  const fake = await startFakeMiniMax({ behaviour: { pushDelayMs: 30 } })
  t.teardown(() => fake.close())
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  const ports = [await freePort(), await freePort()]
  const urls = ports.map((port) => `http://127.0.0.1:${port}`)
  // MiniMax reaches "the service" at one public URL, as it would through a load balancer: each challenge and push goes
  // to the next replica.
  const proxy = await startRoundRobinProxy(urls)
  t.teardown(() => proxy.close())
  const root = tempDir(t)
  const replicaEnv = (index: number): Record<string, string> => ({
    PORT: String(ports[index]),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: '5',
    PUBLIC_BASE_URL: proxy.url,
    MINIMAX_BASE_URL: fake.url,
    MINIMAX_API_KEY: fake.apiKey,
    MINIMAX_SUBMIT_RPM: '100000',
    // Each replica keeps its own copies: a video archived twice would be in both folders.
    VIDEO_DIR: join(root, `videos-${index}`),
    VIDEO_ALLOW_PRIVATE: 'true',
    NOTIFY_URL: consumer.url,
    NOTIFY_ALLOW_PRIVATE: 'true',
    RECONCILE_AFTER_MS: String(POLL_EVERY_MS),
    RECONCILE_BACKOFF_MS: String(POLL_EVERY_MS),
    RECONCILE_BACKOFF_MAX_MS: String(2 * POLL_EVERY_MS),
    RECONCILE_TICK_MS: '50',
    MINIMAX_POLL_BUDGET: '6000',
    SUBMIT_RATE_LIMIT: '100000',
    READ_RATE_LIMIT: '100000',
    CALLBACK_RATE_LIMIT: '100000'
  })
  for (const index of [0, 1]) mkdirSync(replicaEnv(index).VIDEO_DIR!, { recursive: true })
  // Started together: both migrate the empty database at once, under the advisory lock.
  const children = await Promise.all([0, 1].map((index) => startBuiltServer(t, SERVER, replicaEnv(index))))
  const replicas: Replica[] = (['A', 'B'] as const).map((name, index) => ({ name, url: urls[index]!, videoDir: replicaEnv(index).VIDEO_DIR!, child: children[index]! }))
  const [a, b] = replicas as [Replica, Replica]
  // The test's own view of the database, for seeding tasks as a submit leaves them.
  const store = new TaskStore(new PostgresTaskStorage(openTestPool(t, databaseUrl)))

  const lookup = async (replica: Replica, id: string): Promise<any> => {
    const { status, body } = await getJson(`${replica.url}/v1/tasks/${id}`)
    if (status !== 200) throw new Error(`replica ${replica.name}: lookup of ${id} answered ${status}: ${JSON.stringify(body)}`)
    return body
  }
  // The task once it has its archived video, or as it is after SETTLE_MS (a failed check then, and the test goes on to
  // show what happened at MiniMax's end).
  const settled = async (t: Test, id: string, replica: Replica): Promise<any> => {
    const deadline = Date.now() + SETTLE_MS
    for (;;) {
      const task = await lookup(replica, id)
      const done = task.status === 'success' && task.video?.archive?.state === 'stored'
      if (done || Date.now() > deadline) {
        t.ok(done, `task ${id} has its archived video (asked of replica ${replica.name}): ${task.status}, archive ${task.video?.archive?.state}`)
        return task
      }
      await sleep(50)
    }
  }
  const fakeTaskOf = (prompt: string) => [...fake.tasks.values()].filter((task) => (task.body as { prompt?: string }).prompt === prompt)
  const requestsTo = (path: string, query: string) => fake.requests.filter((request) => request.path === path && request.query.includes(query))

  t.test('the whole flow: submit on A, challenge and pushes through the proxy to both, lookup on B with the video', async (t) => {
    const submitted = await postJson(`${a.url}/v1/video_generation`, submitBody({ prompt: 'replicas: whole flow' }))
    t.equal(submitted.status, 200, `A accepted the submit: ${JSON.stringify(submitted.body)}`)
    const { id, task_id: taskIdAtMiniMax } = submitted.body
    t.ok(fake.challenges.some((challenge) => challenge.ok && challenge.url.startsWith(proxy.url)), 'the challenge came through the proxy and was answered')

    const task = await settled(t, id, b)
    t.equal(task.task_id, taskIdAtMiniMax)
    t.match(task.events.filter((event: any) => event.source === 'callback').map((event: any) => event.provider_status), ['processing', 'success'], 'B shows both pushes')
    t.ok(task.video.download_url, 'B answers a signed download link')
    const token = new URL(fake.tasks.get(taskIdAtMiniMax)!.callback_url!).pathname
    const takers = new Set(proxy.forwarded.filter((request) => request.path === token).map((request) => request.target))
    t.same([...takers].sort(), [0, 1], 'the challenge and the pushes of the task were taken by both replicas')

    // The link B signed works on A: the signing key is the database's, shared.
    const link = new URL(task.video.download_url)
    const onA = await fetch(`${a.url}${link.pathname}${link.search}`, { redirect: 'manual' })
    t.ok([200, 302].includes(onA.status), `A serves the link signed by B (${onA.status})`)
    await onA.body?.cancel()
  })

  t.test('work that must happen once happens once: creates, polls, video links, archives and notifications', async (t) => {
    // Pushes withheld: the replicas' reconcilers find out by polling, both at once, every POLL_EVERY_MS.
    fake.set({ pushes: 'none', pushDelayMs: 1200 })
    t.teardown(() => fake.restoreBehaviour())
    const prompts = Array.from({ length: 8 }, (_, i) => `replicas: once #${i}`)
    // Concurrent submits, alternating between the replicas: one create is in flight at a time, so most are queued and
    // dispatched later by one replica or the other.
    const answers = await Promise.all(prompts.map((prompt, i) => postJson(`${replicas[i % 2]!.url}/v1/video_generation`, submitBody({ prompt }))))
    t.same(answers.map((answer) => answer.status).filter((status) => status !== 200 && status !== 202), [], 'every submit accepted or queued')
    const tasks = await Promise.all(answers.map((answer, i) => settled(t, answer.body.id, replicas[(i + 1) % 2]!)))

    for (const prompt of prompts) t.equal(fakeTaskOf(prompt).length, 1, `${prompt}: created once at MiniMax`)
    const gaps: number[] = []
    for (const task of tasks) {
      const times = requestsTo('/v1/query/video_generation', `task_id=${task.task_id}`).map((request) => request.at)
      t.ok(times.length >= 2, `task ${task.task_id} was polled (${times.length} queries)`)
      for (let i = 1; i < times.length; i++) gaps.push(times[i]! - times[i - 1]!)
      t.equal(requestsTo('/v1/files/retrieve', `file_id=${task.file_id}`).length, 1, 'its video link was fetched once')
      t.equal(fake.requests.filter((request) => request.path === `/download/${task.file_id}.mp4`).length, 1, 'its video was downloaded once')
      const copies = replicas.filter((replica) => existsSync(join(replica.videoDir, `${task.id}.mp4`)))
      t.equal(copies.length, 1, `archived by one replica (${copies.map((replica) => replica.name).join(', ')})`)
    }
    t.ok(gaps.length > 0 && Math.min(...gaps) >= MIN_POLL_GAP_MS, `no task polled twice at once: the closest two queries of one task were ${Math.min(...gaps)} ms apart`)
    const queriesBy = await Promise.all(replicas.map((replica) => providerCalls(replica, 'query')))
    t.comment(`queries sent by A: ${queriesBy[0]}, by B: ${queriesBy[1]}`)

    // Notifications: every status change of every task of this file so far, to NOTIFY_URL, once.
    const finished = tasks.map((task) => task.id)
    const notified = (id: string) => consumer.received.some((message) => messageOf(message.body).id === id && messageOf(message.body).status === 'success')
    // Not fatal: the duplicate checks below still say what did arrive.
    await waitUntil('every task\'s success is notified', () => finished.every(notified), SETTLE_MS)
      .catch(() => t.fail(`success not notified for ${finished.filter((id) => !notified(id)).join(', ')}`))
    await sleep(500) // a duplicate would be a second worker's, sent at about the same time
    const ids = consumer.received.map((message) => String(message.headers['webhook-id']))
    t.equal(new Set(ids).size, ids.length, `${ids.length} notifications, each webhook-id once`)
    const changes = consumer.received.map((message) => `${messageOf(message.body).id} ${messageOf(message.body).status}`)
    t.equal(new Set(changes).size, changes.length, 'each status change of a task notified once')
  })

  t.test('a long-poll on B wakes when A takes the push', async (t) => {
    const seeded = await seedTask(store, { task_id: taskId() })
    const taskIdAtMiniMax = (await lookup(b, seeded.id)).task_id
    const started = Date.now()
    const waiting = getJson(`${b.url}/v1/tasks/${seeded.id}?wait=10&status=processing`)
    await sleep(500) // B is waiting by now
    const push = await postJson(`${a.url}/get_callback/${seeded.token}`, { task_id: taskIdAtMiniMax, status: 'failed', base_resp: { status_code: 1026, status_msg: 'input contains sensitive content' } })
    const acknowledged = Date.now()
    t.equal(push.status, 200, 'A acknowledged the push')
    const answer = await waiting
    const woke = Date.now()
    t.equal(answer.status, 200)
    t.equal(answer.body.status, 'failed', 'B answered with the status A wrote')
    t.ok(acknowledged - started >= 500 && woke - acknowledged < WAKE_WITHIN_MS, `B waited (${acknowledged - started} ms) and answered ${woke - acknowledged} ms after A's acknowledgement`)
  })

  t.test('one submit rate for both replicas: as many creates as MiniMax allows in any window, none refused', async (t) => {
    // A fake of its own that refuses creates past the limit (1002, as MiniMax does), and two replicas of their own on a
    // database of their own, paced at that limit: apart, each would send the whole limit, and the fake would refuse.
    const limited = await startFakeMiniMax({ behaviour: { pushDelayMs: 30, createRpm: CREATES_PER_WINDOW, createRpmWindowMs: CREATE_WINDOW_MS } })
    t.teardown(() => limited.close())
    const database = await cluster.freshDatabase()
    const pair = await Promise.all([0, 1].map(async () => {
      const port = String(await freePort())
      const url = `http://127.0.0.1:${port}`
      await startBuiltServer(t, SERVER, {
        PORT: port,
        HOST: '127.0.0.1',
        DATABASE_URL: database,
        DATABASE_POOL_SIZE: '3',
        PUBLIC_BASE_URL: url,
        MINIMAX_BASE_URL: limited.url,
        MINIMAX_API_KEY: limited.apiKey,
        MINIMAX_SUBMIT_RPM: String(CREATES_PER_WINDOW),
        SUBMIT_RPM_WINDOW_MS: String(CREATE_WINDOW_MS),
        SUBMIT_RATE_LIMIT: '100000',
        READ_RATE_LIMIT: '100000'
      })
      return url
    }))
    const prompts = Array.from({ length: 2 * CREATES_PER_WINDOW }, (_, i) => `replicas: paced #${i}`)
    const answers = await Promise.all(prompts.map((prompt, i) => postJson(`${pair[i % 2]}/v1/video_generation`, submitBody({ prompt }))))
    t.same(answers.map((answer) => answer.status).filter((status) => status !== 200 && status !== 202), [], 'every submit accepted or queued')
    await waitUntil('every paced task is created', async () => {
      const tasks = await Promise.all(answers.map(async (answer, i) => (await getJson(`${pair[(i + 1) % 2]}/v1/tasks/${answer.body.id}`)).body))
      return tasks.every((task) => task.status === 'processing' || task.status === 'success')
    }, SETTLE_MS).catch((err: Error) => t.fail(err.message))
    t.same(limited.refusedCreates, [], 'MiniMax refused no create')
    for (const prompt of prompts) t.equal([...limited.tasks.values()].filter((task) => (task.body as { prompt?: string }).prompt === prompt).length, 1, `${prompt}: created once`)
    const times = limited.createTimes
    const crowded = times.filter((time, i) => i >= CREATES_PER_WINDOW && time - times[i - CREATES_PER_WINDOW]! < CREATE_WINDOW_MS)
    t.equal(crowded.length, 0, `at most ${CREATES_PER_WINDOW} creates in any ${CREATE_WINDOW_MS} ms (${times.length} creates over ${times.at(-1)! - times[0]!} ms)`)
  })

  t.test('kill -9 of A mid-burst: every push either replica acknowledged is in the database, read through B', async (t) => {
    const tasks = await Promise.all(Array.from({ length: BURST_TASKS }, async () => ({ ...await seedTask(store), taskId: taskId() })))
    const acknowledged: Array<{ id: string, status: string, by: Replica['name'] }> = []
    const sent = { A: 0, B: 0 }
    let ackedByA = 0
    const push = async (task: typeof tasks[number], status: string, replica: Replica) => {
      sent[replica.name]++
      try {
        const body = status === 'failed' ? { task_id: task.taskId, status, base_resp: { status_code: 1026, status_msg: 'input contains sensitive content' } } : { task_id: task.taskId, status }
        const res = await fetch(`${replica.url}/get_callback/${task.token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
        await res.text()
        if (res.status !== 200) return
        acknowledged.push({ id: task.id, status, by: replica.name })
        if (replica === a && ++ackedByA === KILL_AFTER_ACKS) a.child.kill('SIGKILL')
      } catch {} // the connection died with the process: not acknowledged, so nothing is promised
    }
    // A task's two pushes go to different replicas, in alternating order: each replica takes pushes for every task.
    await Promise.all(tasks.map(async (task, i) => {
      const [first, second] = i % 2 === 0 ? [a, b] : [b, a]
      await push(task, 'processing', first)
      await push(task, 'failed', second)
    }))
    if (a.child.exitCode === null && a.child.signalCode === null) await new Promise((resolve) => a.child.once('exit', resolve))
    t.equal(a.child.signalCode, 'SIGKILL', 'A was killed mid-burst')
    const byA = acknowledged.filter((ack) => ack.by === 'A').length
    t.ok(byA >= KILL_AFTER_ACKS && byA < sent.A, `A acknowledged ${byA} of the ${sent.A} pushes sent to it`)
    t.equal(acknowledged.filter((ack) => ack.by === 'B').length, sent.B, `B acknowledged all ${sent.B} pushes sent to it`)

    let missing = 0
    for (const { id, status } of acknowledged) {
      const task = await lookup(b, id)
      const recorded = task.events.some((event: any) => event.source === 'callback' && event.provider_status === status)
      const consistent = status === 'failed' ? task.status === 'failed' : ['processing', 'failed'].includes(task.status)
      if (!recorded || !consistent) missing++
    }
    t.equal(missing, 0, `each of the ${acknowledged.length} acknowledged pushes is in the database`)
  })
}

/** The replica's count of provider calls of one operation, from its /metrics. */
async function providerCalls (replica: Replica, operation: string): Promise<number> {
  const text = await (await fetch(`${replica.url}/metrics`)).text()
  let total = 0
  for (const match of text.matchAll(/^s2v_provider_call_duration_seconds_count\{([^}]*)\} (\d+)$/gm)) {
    if (match[1]!.includes(`operation="${operation}"`)) total += Number(match[2])
  }
  return total
}

function messageOf (body: string): { id?: string, status?: string } {
  try {
    return JSON.parse(body)
  } catch {
    return {}
  }
}
