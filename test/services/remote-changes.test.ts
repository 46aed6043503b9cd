// The task module hears the status changes other replicas commit (remoteStatus): on PostgreSQL by LISTEN/NOTIFY on a
// connection of its own, made again when lost; on SQLite (one process) there is nothing to hear.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Pool } from 'pg'
import t, { type Test } from 'tap'
import type { TaskRow } from '../../src/db/tasks-repository.js'
import { LISTENER_APPLICATION_NAME, PostgresTaskStorage } from '../../src/db/postgres/task-storage.js'
import { TaskStore, type Log } from '../../src/services/task-store.js'
import { seedTask, taskId } from '../helper.js'
import { openTestPool } from '../postgres-cluster.js'
import { postgres, sqlite } from '../db/task-storage-engines.js'

// Started before any test is queued (see startPostgres).
const pg = await postgres(t)

// A notification arrives within milliseconds of the commit, a new listening connection within the first back-off
// (250 ms); this long means it never will.
const HEAR_LIMIT_MS = 10_000

const processing = { status: 'processing', providerStatus: 'Processing' } as const

/** Warnings kept, for the ones a lost connection must give. */
function quietLog (): Log & { warnings: string[] } {
  const warnings: string[] = []
  return { warnings, info () {}, error () {}, warn (_obj: unknown, msg?: string) { warnings.push(msg ?? '') } }
}

/** Every remoteStatus and status event the store emits, and a wait for the next remoteStatus that matches. */
function heard (store: TaskStore) {
  const remote: TaskRow[] = []
  const local: TaskRow[] = []
  store.events.subscribe({ remoteStatus: ({ task }) => { remote.push(task) }, status: ({ task }) => { local.push(task) } })
  const next = async (seq: number): Promise<TaskRow> => {
    const deadline = Date.now() + HEAR_LIMIT_MS
    for (;;) {
      const found = remote.find((task) => task.seq === seq)
      if (found) return found
      if (Date.now() > deadline) throw new Error(`no remoteStatus for task ${seq}`)
      await sleep(10)
    }
  }
  return { remote, local, next }
}

/** A replica: the task module on its own pool of the database, hearing the others when `listening`. */
async function replica (t: Test, url: string, { listening = true, statementTimeoutMs }: { listening?: boolean, statementTimeoutMs?: number } = {}) {
  const store = new TaskStore(new PostgresTaskStorage(openTestPool(t, url, statementTimeoutMs === undefined ? {} : { statementTimeoutMs })))
  const log = quietLog()
  if (listening) {
    await store.startRemoteChanges(log)
    t.teardown(() => store.stopRemoteChanges())
  }
  return { store, log, heard: heard(store) }
}

/** The pids of the database's listening connections. */
async function listeners (admin: Pool): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1', [LISTENER_APPLICATION_NAME])
  return rows.map((row) => row.pid)
}

if (pg) {
  t.test('postgres: a change committed through one replica is heard by the other as remoteStatus with the row; no replica hears itself', async (t) => {
    const url = await pg.freshUrl()
    const [a, b] = [await replica(t, url), await replica(t, url)]
    const task = await seedTask(a.store)
    const id = taskId()
    await a.store.applyUpdate(task.seq, id, processing, 'callback')
    const row = await b.heard.next(task.seq)
    t.same(row, await b.store.queries.bySeq(task.seq), 'the row as committed, read by the hearing replica')
    t.match(row, { status: 'processing', task_id: id })
    // Notifications reach each listener in commit order: once A hears B's later change, it would have heard its own.
    const other = await seedTask(b.store)
    await b.store.applyUpdate(other.seq, taskId(), processing, 'callback')
    await a.heard.next(other.seq)
    t.same(a.heard.remote.map((task) => task.seq), [other.seq], 'A heard B\'s change and not its own')
    t.same(b.heard.remote.map((task) => task.seq), [task.seq], 'B heard A\'s change and not its own')
    t.same(b.heard.local.map((task) => task.seq), [other.seq], 'another replica\'s change is never a status event here (metrics, notifications)')
    t.match(await a.store.applyUpdate(task.seq, id, processing, 'callback'), { ok: true, decision: { outcome: 'duplicate' } })
    t.match(await a.store.applyUpdate(other.seq, id, { status: 'success', providerStatus: 'Success' }, 'callback'), { ok: false, reason: 'task_id_mismatch' })
    const third = await seedTask(a.store)
    await a.store.applyUpdate(third.seq, taskId(), processing, 'callback')
    await b.heard.next(third.seq)
    t.same(b.heard.remote.map((task) => task.seq), [task.seq, third.seq], 'a duplicate changes no status and is not announced, nor is a refused update')
    // The submit queue's moves change statuses too: a create refused by the rate limit goes back to the queue.
    const requeued = await seedTask(a.store)
    await a.store.moveInQueue(requeued.seq, 'requeue', { queuedRequest: '{}' })
    t.match(await b.heard.next(requeued.seq), { status: 'queued' }, 'a queue move is heard too')
  })

  t.test('postgres: a status change that rolls back is heard by nobody', async (t) => {
    const url = await pg.freshUrl()
    const a = await replica(t, url, { listening: false, statementTimeoutMs: 300 })
    const b = await replica(t, url)
    const admin = openTestPool(t, url)
    const [x, y, z] = [await seedTask(a.store), await seedTask(a.store), await seedTask(a.store)]
    // y's change binds a task_id that z holds in a transaction left open here, so it waits on the unique index until
    // the statement times out: the group rolls back after x's change (and its notification) was written in it.
    const held = taskId()
    const blocker = await admin.connect()
    await blocker.query('BEGIN')
    await blocker.query('UPDATE tasks SET task_id = $2 WHERE seq = $1', [z.seq, held])
    const group = [a.store.applyUpdate(x.seq, taskId(), processing, 'callback'), a.store.applyUpdate(y.seq, held, { status: 'success', providerStatus: 'Success' }, 'callback')]
    const settled = await Promise.allSettled(group)
    await blocker.query('ROLLBACK')
    blocker.release()
    t.match(settled, [{ status: 'rejected', reason: { code: '57014' } }, { status: 'rejected' }], 'the group failed whole')
    t.equal((await a.store.queries.bySeq(x.seq))!.status, 'submitting', 'x\'s change rolled back')
    await a.store.applyUpdate(z.seq, taskId(), processing, 'callback')
    await b.heard.next(z.seq)
    t.same(b.heard.remote.map((task) => task.seq), [z.seq], 'only the committed change was heard')
  })

  t.test('postgres: after its listening connection is killed, a replica hears changes again', async (t) => {
    const url = await pg.freshUrl()
    const a = await replica(t, url, { listening: false })
    const b = await replica(t, url)
    const admin = openTestPool(t, url)
    const [killed] = await listeners(admin)
    t.ok(killed, 'the replica listens on a connection of its own, named as such')
    t.equal(await admin.query('SELECT pg_terminate_backend($1)', [killed]).then(({ rows }) => rows.length), 1)
    const deadline = Date.now() + HEAR_LIMIT_MS
    let again = await listeners(admin)
    while (!(again.length === 1 && again[0] !== killed) && Date.now() < deadline) {
      await sleep(20)
      again = await listeners(admin)
    }
    t.ok(again.length === 1 && again[0] !== killed, 'a new listening connection replaced the killed one')
    t.ok(b.log.warnings.some((msg) => /lost the connection/.test(msg)), 'the loss was logged')
    const task = await seedTask(a.store)
    await a.store.applyUpdate(task.seq, taskId(), processing, 'callback')
    t.match(await b.heard.next(task.seq), { seq: task.seq, status: 'processing' }, 'and it hears the next change')
    await b.store.stopRemoteChanges()
    t.same(await listeners(admin), [], 'stopping closes the listening connection')
  })
}

t.test('sqlite: there is nothing to hear; starting and stopping work and emit nothing', async (t) => {
  const store = new TaskStore(await sqlite.open(t))
  const events = heard(store)
  await store.startRemoteChanges(quietLog())
  const task = await seedTask(store)
  await store.applyUpdate(task.seq, taskId(), processing, 'callback')
  await store.stopRemoteChanges()
  await store.startRemoteChanges(quietLog())
  await store.stopRemoteChanges()
  await sleep(50)
  t.same(events.remote, [], 'no remoteStatus')
  t.same(events.local.map((row) => row.seq), [task.seq], 'the change is this process\'s own status event')
})
