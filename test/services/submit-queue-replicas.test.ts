// Two submit queues as two replicas on one PostgreSQL database (each its own pool, task module and shared limits):
// together they send each queued task once, one create at a time, never more than the rate in a window; a replica
// killed mid-create holds the slot only until its lease runs out, and the other goes on.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { migratePostgres } from '../../src/db/postgres/migrate.js'
import { PostgresLimits } from '../../src/db/postgres/shared-limits.js'
import { PostgresTaskStorage } from '../../src/db/postgres/task-storage.js'
import type { TaskRow } from '../../src/db/tasks-repository.js'
import { newCallbackToken } from '../../src/lib/callback-token.js'
import { SubmitQueue, type QueueSender } from '../../src/services/submit-queue.js'
import { TaskStore } from '../../src/services/task-store.js'
import { havePostgres, openTestPool, startPostgres } from '../postgres-cluster.js'

// 3 creates a second: a 1,250 ms window with the pacer's margin, one create every ~417 ms.
const RPM = 3
const WINDOW_MS = 1000
const PACER_WINDOW_MS = 1250
// The starts are timed here, a little after the database's clock granted each: a window this much shorter is what
// this process can tell apart for sure.
const MEASURE_SLACK_MS = 200
const CREATE_MS = 50
const quiet = { info () {}, warn () {}, error () {} }

type Sent = { replica: number, seq: number, start: number, end: number }

/** A replica's queue over its own pool; `send` is what its creates do. */
function replicaQueue (t: Test, url: string, send: QueueSender, leaseMs = 10_000): { queue: SubmitQueue, store: TaskStore } {
  const pool = openTestPool(t, url)
  const store = new TaskStore(new PostgresTaskStorage(pool))
  const queue = new SubmitQueue({
    store,
    rpm: { minimax: RPM, modellix: RPM },
    windowMs: WINDOW_MS,
    leaseMs: { minimax: leaseMs, modellix: leaseMs },
    limits: new PostgresLimits(pool),
    maxWaitMs: 3_600_000,
    log: quiet
  })
  queue.setSender(send)
  t.teardown(() => queue.stop())
  return { queue, store }
}

async function enqueue (store: TaskStore, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const id = randomUUID()
    const { token, hash } = newCallbackToken(id)
    const created = new Date().toISOString()
    await store.create({
      id,
      provider: 'minimax',
      model: 'S2V-01',
      status: 'queued',
      prompt: `task ${i}`,
      prompt_optimizer: null,
      image_ref: 'https://example.com/face.jpg',
      metadata: null,
      callback_token_hash: hash,
      caller: `caller-${i % 3}`,
      created_at: created,
      notify_url: null,
      next_poll_at: null,
      queued_request: JSON.stringify({ request: { model: 'S2V-01', image: 'https://example.com/face.jpg' }, token }),
      queued_at: created
    })
  }
}

async function waitFor (what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(20)
  }
}

if (havePostgres(t, 'the submit queue on two replicas')) {
  const cluster = await startPostgres(t)
  const database = async (t: Test): Promise<string> => {
    const url = await cluster.freshDatabase()
    await migratePostgres(openTestPool(t, url, { max: 1 }))
    return url
  }

  t.test('two replicas send each queued task once, one at a time, within the rate together', async (t) => {
    const url = await database(t)
    const sent: Sent[] = []
    const sender = (replica: number): QueueSender => async (task: TaskRow) => {
      const start = Date.now()
      await sleep(CREATE_MS)
      sent.push({ replica, seq: task.seq, start, end: Date.now() })
    }
    const replicas = [replicaQueue(t, url, sender(0)), replicaQueue(t, url, sender(1))]
    await enqueue(replicas[0]!.store, 8)
    for (const { queue } of replicas) queue.start(['minimax'])
    await waitFor('all eight sent', () => sent.length >= 8, 20_000)
    await sleep(300) // nothing more comes

    t.equal(sent.length, 8, `eight creates (by replica: ${sent.map((s) => s.replica).join('')})`)
    t.equal(new Set(sent.map((s) => s.seq)).size, 8, 'each task once')
    const byStart = [...sent].sort((a, b) => a.start - b.start)
    t.ok(byStart.every((s, i) => i === 0 || s.start >= byStart[i - 1]!.end), 'never two creates in flight at once')
    let most = 0
    for (let i = 0, j = 0; j < byStart.length; j++) {
      while (byStart[j]!.start - byStart[i]!.start >= PACER_WINDOW_MS - MEASURE_SLACK_MS) i++
      most = Math.max(most, j - i + 1)
    }
    t.ok(most <= RPM, `at most ${RPM} starts in any window of both replicas (saw ${most})`)
    const gaps = byStart.slice(1).map((s, i) => s.start - byStart[i]!.end)
    t.ok(Math.min(...gaps) >= PACER_WINDOW_MS / RPM / 2 - 5, `at least half an interval after each answer (shortest gap ${Math.min(...gaps)} ms)`)
  })

  t.test('a replica killed mid-create holds the slot until its lease runs out; the other then goes on', async (t) => {
    const url = await database(t)
    const leaseMs = 1500
    const sent: Sent[] = []
    let killedAt = 0
    // The first replica's create never answers: as if the process died after sending it. It is let go when the test
    // ends (before its queue's teardown, which waits for its creates), when the survivor is long done.
    let letGo = () => {}
    const killed = replicaQueue(t, url, async () => {
      killedAt = Date.now()
      await new Promise<void>((resolve) => { letGo = resolve })
    }, leaseMs)
    t.teardown(() => letGo())
    const survivor = replicaQueue(t, url, async (task) => {
      const start = Date.now()
      await sleep(CREATE_MS)
      sent.push({ replica: 1, seq: task.seq, start, end: Date.now() })
    }, leaseMs)
    await enqueue(killed.store, 3)
    killed.queue.start(['minimax'])
    await waitFor('the first create sent', () => killedAt > 0, 10_000)
    // It dispatches nothing more; stop() waits for the create in flight, which never answers, so it is not awaited.
    killed.queue.stop().catch((err: unknown) => t.fail(String(err)))
    survivor.queue.start(['minimax'])
    await waitFor('the other two sent by the survivor', () => sent.length >= 2, 15_000)
    const first = Math.min(...sent.map((s) => s.start))
    t.ok(first - killedAt >= leaseMs - 50, `the survivor's first create waited for the lease (${first - killedAt} ms after the killed one's)`)
    t.ok(first - killedAt < leaseMs + 2500, 'and went within a queue tick or two after it ran out')
    t.equal(new Set(sent.map((s) => s.seq)).size, 2, 'the tasks still queued, each once; the one in flight is not sent again')
  })
}
