// Issue 8, proof: 20 cycles of kill -9 under mixed load (pushes, submits through the fake MiniMax, lookups), then a
// restart: no acknowledged push or submit missing, PRAGMA integrity_check ok, every task in a legal state.
import t from 'tap'
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { openDatabase } from '../src/db/database.js'
import { migrate } from '../src/db/migrate.js'
import { TasksRepository, type EventRow, type TaskRow } from '../src/db/tasks-repository.js'
import { SqliteTaskStorage } from '../src/db/sqlite-task-storage.js'
import { TaskStore } from '../src/services/task-store.js'
import { TASK_STATUSES } from '../src/services/task-state.js'
import { startFakeMiniMax } from './fixtures/fake-minimax.js'
import { freePort, seedTask, startBuiltServer, submitBody, taskId, tempDir } from './helper.js'

const SERVER = join(import.meta.dirname, '..', 'dist', 'server.js')
const CYCLES = Number(process.env.CRASH_LOOP_CYCLES ?? 20)
const TASKS = 300
// Load runs this long (random within the range) after the cycle's first acknowledged push, then kill -9 lands mid-load.
const LOAD_MS = [400, 1500] as const
// 20 server starts take ~15 s on an idle machine, minutes on a busy one (measured 8-10 s per start at load average 17).
t.setTimeout(900_000)
const PUSH_WORKERS = 8
const SUBMIT_WORKERS = 2
const LOOKUP_WORKERS = 2
// Words MiniMax may push, in both vocabularies: mostly progress, some verdicts (with their file_id or code).
const WORDS = ['processing', 'Processing', 'Queueing', 'Preparing', 'processing', 'Processing', 'success', 'Success', 'Fail', 'failed']

type Seeded = { id: string, token: string, seq: number, providerTaskId: string }

const exited = (child: ChildProcess) => new Promise((resolve) => child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve))
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!

t.test(`${CYCLES} cycles of kill -9 under mixed load lose nothing acknowledged and leave every task legal`, { skip: existsSync(SERVER) ? false : 'run `npm run build` first (npm test does)' }, async (t) => {
  const databasePath = join(tempDir(t), 's2v.db')
  const db = openDatabase(databasePath, { synchronous: 'FULL' })
  migrate(db)
  const seedStore = new TaskStore(new SqliteTaskStorage(new TasksRepository(db)))
  const seeded: Seeded[] = await Promise.all(Array.from({ length: TASKS }, async () => {
    const providerTaskId = taskId()
    return { ...await seedTask(seedStore, { task_id: providerTaskId }), providerTaskId }
  }))
  db.close()

  const fake = await startFakeMiniMax({ behaviour: { pushDelayMs: 40 } })
  t.teardown(() => fake.close())
  const port = String(await freePort())
  const base = `http://127.0.0.1:${port}`
  const env = {
    PORT: port,
    HOST: '127.0.0.1',
    DATABASE_PATH: databasePath,
    PUBLIC_BASE_URL: base,
    MINIMAX_BASE_URL: fake.url,
    MINIMAX_API_KEY: fake.apiKey,
    CALLBACK_RATE_LIMIT: '1000000',
    SUBMIT_RATE_LIMIT: '1000000',
    READ_RATE_LIMIT: '1000000',
    // Creates go out at once, as the submitters expect; the queue's own restart safety has its test (test/queue.test.ts).
    MINIMAX_SUBMIT_RPM: '1000000',
    LOG_LEVEL: 'error'
  }

  // What the service acknowledged: pushes (ours and the fake's) by task and word, submits by id.
  const ackedPushes = new Map<string, number>() // `${seq} ${word}` → count
  const ackedSubmits: Array<{ id: string, task_id: string }> = []
  const counts = { pushesSent: 0, pushesAcked: 0, submitsSent: 0, submitsAcked: 0, lookups: 0, lookupErrors: 0, kills: 0 }

  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const cycleStart = Date.now()
    const server = await startBuiltServer(t, SERVER, env)
    const readyMs = Date.now() - cycleStart
    const cycleLoad = { running: true }
    const worker = async (work: () => Promise<void>) => {
      while (cycleLoad.running) {
        try {
          await work()
        } catch {} // the connection died with the process: nothing acknowledged, nothing promised
      }
    }
    const push = async () => {
      const task = pick(seeded)
      const word = pick(WORDS)
      const body: Record<string, unknown> = { task_id: task.providerTaskId, status: word }
      if (/^success$/i.test(word)) body.file_id = `9${task.seq}`
      if (/^fail/i.test(word)) body.base_resp = { status_code: 1027, status_msg: 'sensitive content in the generated video' }
      counts.pushesSent++
      const res = await fetch(`${base}/get_callback/${task.token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      const answer = await res.json() as { status?: string }
      if (res.status === 200 && answer.status === 'success') {
        counts.pushesAcked++
        const key = `${task.seq} ${word}`
        ackedPushes.set(key, (ackedPushes.get(key) ?? 0) + 1)
      }
    }
    const submit = async () => {
      counts.submitsSent++
      const res = await fetch(`${base}/v1/video_generation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submitBody()) })
      const answer = await res.json() as { id?: string, task_id?: string }
      if (res.status === 200 && answer.id && answer.task_id) {
        counts.submitsAcked++
        ackedSubmits.push({ id: answer.id, task_id: answer.task_id })
      }
    }
    const lookup = async () => {
      const res = await fetch(`${base}/v1/tasks/${pick(seeded).id}`)
      await res.arrayBuffer()
      if (res.status === 200) counts.lookups++
      else counts.lookupErrors++
    }
    const load = [
      ...Array.from({ length: PUSH_WORKERS }, () => worker(push)),
      ...Array.from({ length: SUBMIT_WORKERS }, () => worker(submit)),
      ...Array.from({ length: LOOKUP_WORKERS }, () => worker(lookup))
    ]
    const ackedBefore = counts.pushesAcked
    while (counts.pushesAcked === ackedBefore && Date.now() - cycleStart < 60_000) await sleep(5)
    await sleep(LOAD_MS[0] + Math.random() * (LOAD_MS[1] - LOAD_MS[0]))
    server.kill('SIGKILL')
    await exited(server)
    t.equal(server.signalCode, 'SIGKILL', `cycle ${cycle + 1}: killed mid-load`)
    counts.kills++
    cycleLoad.running = false
    await Promise.all(load)
    if (process.env.CRASH_LOOP_DEBUG) t.comment(`cycle ${cycle + 1}: ready in ${readyMs} ms, whole cycle ${Date.now() - cycleStart} ms`)
  }

  // The last restart: the fake's late pushes for creates cut short by a kill find the service again.
  const last = await startBuiltServer(t, SERVER, env)
  await sleep(500)
  const stopped = exited(last)
  last.kill('SIGTERM')
  await stopped

  // The fake's pushes that our service answered 200 are acknowledged too.
  const check = openDatabase(databasePath, { synchronous: 'FULL' })
  t.teardown(() => check.close())
  const repo = new TasksRepository(check)
  const fakeAcked = fake.pushes.filter((p) => p.statusCode === 200)
  for (const p of fakeAcked) {
    const body = JSON.parse(p.body) as { task_id: string, status: string }
    const row = repo.byTaskId(String(body.task_id))
    const key = `${row?.seq ?? `missing:${body.task_id}`} ${body.status}`
    ackedPushes.set(key, (ackedPushes.get(key) ?? 0) + 1)
  }

  t.equal(check.pragma('integrity_check', { simple: true }), 'ok', 'PRAGMA integrity_check: ok')
  t.same(check.pragma('foreign_key_check'), [], 'no dangling references')

  // Every acknowledged push is an event of its task, as often as it was acknowledged.
  let missingPushes = 0
  const events = new Map<number, EventRow[]>()
  const eventsOf = (seq: number) => events.get(seq) ?? events.set(seq, repo.eventsOf(seq)).get(seq)!
  for (const [key, acked] of ackedPushes) {
    const [seqText, word] = key.split(' ') as [string, string]
    const recorded = seqText.startsWith('missing:') ? 0 : eventsOf(Number(seqText)).filter((e) => e.source === 'callback' && e.provider_status === word).length
    if (recorded < acked) missingPushes += acked - recorded
  }
  t.equal(missingPushes, 0, `every acknowledged push is on disk (${counts.pushesAcked} of ours, ${fakeAcked.length} of the fake's)`)

  let missingSubmits = 0
  for (const { id, task_id: providerTaskId } of ackedSubmits) {
    const row = repo.byId(id)
    if (!row || row.task_id !== providerTaskId || row.status === 'submitting') missingSubmits++
  }
  t.equal(missingSubmits, 0, `every acknowledged submit is on disk, bound to MiniMax's task_id (${ackedSubmits.length})`)

  // Every task is in a legal state, consistent with its own history.
  const tasks = check.prepare('SELECT * FROM tasks').all() as TaskRow[]
  const illegal: string[] = []
  for (const task of tasks) {
    const why = illegalState(task, eventsOf(task.seq))
    if (why) illegal.push(`${task.id}: ${why}`)
  }
  t.same(illegal, [], `all ${tasks.length} tasks are in a legal state`)
  const byStatus = Object.fromEntries(TASK_STATUSES.map((status) => [status, tasks.filter((task) => task.status === status).length]))
  const kept = Object.fromEntries((check.prepare('SELECT status, n FROM task_counts').all() as Array<{ status: string, n: number }>).map((row) => [row.status, row.n]))
  t.same(kept, byStatus, 'the trigger-kept counts match the rows')

  t.comment(`crash loop: ${counts.kills} kill -9 cycles; pushes sent ${counts.pushesSent}, acknowledged ${counts.pushesAcked} + ${fakeAcked.length} by the fake, missing ${missingPushes}; ` +
    `submits sent ${counts.submitsSent}, acknowledged ${counts.submitsAcked}, missing ${missingSubmits}; lookups ${counts.lookups} (non-200: ${counts.lookupErrors}); ` +
    `tasks ${JSON.stringify(byStatus)}; integrity ok; illegal ${illegal.length}`)
})

const STATUS_SETTING_OUTCOMES = new Set(['applied', 'dispatched', 'rate_limited', 'cancelled', 'queue_timeout'])

/** Why a task's row breaks an invariant of the state machine, or null. */
function illegalState (task: TaskRow, events: EventRow[]): string | null {
  if (!(TASK_STATUSES as readonly string[]).includes(task.status)) return `unknown status ${task.status}`
  if ((task.status === 'failed') !== (task.error_code !== null)) return `status ${task.status} with error ${task.error_code}`
  if (task.error_provisional === 1 && task.status !== 'failed') return 'provisional error on a task that did not fail'
  const unsent = task.status === 'queued' || task.status === 'submitting'
  if (unsent !== (task.task_id === null) && task.status !== 'failed') return `status ${task.status} with task_id ${task.task_id}`
  if (task.status === 'success' && task.file_id === null) return 'success without a file_id'
  // The events that set a status: the state machine's (applied) and the submit queue's own moves.
  const moves = events.filter((event) => STATUS_SETTING_OUTCOMES.has(event.outcome))
  const last = moves.at(-1)?.status
  if (unsent ? last !== undefined && last !== task.status : last !== task.status) {
    return `status ${task.status} but the last status-setting event says ${last ?? 'nothing'}`
  }
  return null
}
