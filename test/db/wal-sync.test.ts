// Group commits fsynced after the commit: answered only after the WAL is on disk, groups formed while it syncs; the fsync
// on the loop while the disk is quick, on the thread pool while it is slow.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { openDatabase } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrate.js'
import { TasksRepository } from '../../src/db/tasks-repository.js'
import { SqliteTaskStorage, type GroupSync } from '../../src/db/sqlite-task-storage.js'
import { WalSync, type FileSync } from '../../src/db/wal-sync.js'
import { TaskStore } from '../../src/services/task-store.js'
import { seedTask, taskId, tempDir } from '../helper.js'

/** A WalSync whose flushes the test finishes by hand. */
function heldSync (real: WalSync): GroupSync & { flushes: Array<{ finish: (error?: Error) => void }>, commits: number } {
  const flushes: Array<{ finish: (error?: Error) => void }> = []
  const held = {
    flushes,
    commits: 0,
    unsynced: <T>(fn: () => T): T => { held.commits += 1; return real.unsynced(fn) },
    flush: () => new Promise<void>((resolve, reject) => { flushes.push({ finish: (error?: Error) => (error ? reject(error) : resolve()) }) })
  }
  return held
}

function open (t: Test) {
  const db = openDatabase(join(tempDir(t), 's2v.db'), { synchronous: 'FULL' })
  migrate(db)
  const walSync = new WalSync(db)
  t.teardown(async () => { await walSync.close(); db.close() })
  return { db, walSync }
}

t.test('a pushed update resolves, and is announced, only after the WAL sync that follows its commit', async (t) => {
  const { db, walSync } = open(t)
  const sync = heldSync(walSync)
  const store = new TaskStore(new SqliteTaskStorage(new TasksRepository(db), sync))
  const task = await seedTask(store)
  const announced: string[] = []
  store.events.on('status', ({ task }) => announced.push(task.status))
  let settled = false
  const pending = store.applyUpdate(task.seq, taskId(), { status: 'processing', providerStatus: 'processing' }, 'callback').finally(() => { settled = true })
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal((await store.queries.bySeq(task.seq))!.status, 'processing', 'committed')
  t.equal(sync.flushes.length, 1, 'one sync started')
  t.notOk(settled, 'not answered before the sync')
  t.same(announced, [], 'nor announced')
  sync.flushes[0]!.finish()
  const result = await pending
  t.ok(result.ok)
  t.same(announced, ['processing'])
})

t.test('updates arriving while a sync runs commit together after it, in one group; a failed sync fails its updates', async (t) => {
  const { db, walSync } = open(t)
  const sync = heldSync(walSync)
  const store = new TaskStore(new SqliteTaskStorage(new TasksRepository(db), sync))
  const [a, b, c] = [await seedTask(store), await seedTask(store), await seedTask(store)]
  const first = store.applyUpdate(a.seq, taskId(), { status: 'processing', providerStatus: 'processing' }, 'callback')
  await new Promise((resolve) => setImmediate(resolve))
  // Two more arrive in later turns while the first group's sync is still running: they wait, and commit as one group.
  const second = store.applyUpdate(b.seq, taskId(), { status: 'processing', providerStatus: 'processing' }, 'callback')
  await new Promise((resolve) => setImmediate(resolve))
  const third = store.applyUpdate(c.seq, taskId(), { status: 'processing', providerStatus: 'processing' }, 'callback')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(sync.commits, 1, 'nothing else committed while the sync runs')
  t.equal((await store.queries.bySeq(b.seq))!.status, 'submitting')
  sync.flushes[0]!.finish()
  await first
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(sync.commits, 2, 'then the two waiting updates commit in one transaction')
  t.equal(sync.flushes.length, 2, 'with one sync')
  sync.flushes[1]!.finish(new Error('EIO'))
  await t.rejects(second, /EIO/, 'a failed sync is never answered as durable')
  await t.rejects(third, /EIO/)
})

t.test('WalSync commits without the fsync, restores FULL, and syncs the WAL file', async (t) => {
  const { db, walSync } = open(t)
  const during = walSync.unsynced(() => db.pragma('synchronous', { simple: true }))
  t.equal(during, 1, 'NORMAL inside')
  t.equal(db.pragma('synchronous', { simple: true }), 2, 'FULL again after')
  t.throws(() => walSync.unsynced(() => { throw new Error('boom') }), /boom/)
  t.equal(db.pragma('synchronous', { simple: true }), 2, 'FULL again after a failure too')
  walSync.unsynced(() => db.exec('CREATE TABLE wal_sync_probe (x); INSERT INTO wal_sync_probe VALUES (1)'))
  await walSync.flush()
  await walSync.flush()
  t.pass('flushed the WAL')
})

t.test('the fsync runs on the loop while the disk is quick, on the thread pool while it is slow, and on the loop again once a second', async (t) => {
  const { db } = open(t)
  let clock = 0
  let loopMs = 0.2
  const calls: string[] = []
  const sync: FileSync = {
    onLoop: () => { calls.push('loop'); clock += loopMs },
    onPool: async () => { calls.push('pool') }
  }
  const walSync = new WalSync(db, { sync, now: () => clock })
  t.teardown(async () => { await walSync.close() })
  walSync.unsynced(() => db.exec('CREATE TABLE wal_sync_probe (x)'))
  const flush = async (times: number) => { for (let i = 0; i < times; i++) await walSync.flush() }

  await flush(3)
  t.same(calls.splice(0), ['loop', 'loop', 'loop'], 'quick fsyncs stay on the loop')
  loopMs = 5
  await flush(1)
  t.notOk(walSync.onLoop, 'one slow fsync on the loop sends the next ones to the pool')
  loopMs = 0.2
  clock += 100
  await flush(3)
  t.same(calls.splice(0), ['loop', 'pool', 'pool', 'pool'], 'the pool until a second has passed')
  clock += 1000
  await flush(2)
  t.same(calls.splice(0), ['loop', 'loop'], 'then one on the loop again: quick, so the loop again')

  sync.onLoop = () => { throw new Error('EIO') }
  await t.rejects(walSync.flush(), /EIO/, 'a failed fsync on the loop rejects the flush: its updates are never answered as durable')
})
