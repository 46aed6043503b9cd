// The retention job on a fresh migrated database: what it purges, what it keeps, batches, and its loop.
import t from 'tap'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { openDatabase, type Db } from '../../src/db/database.js'
import { migrate } from '../../src/db/migrate.js'
import { PURGE_SQL, TasksRepository } from '../../src/db/tasks-repository.js'
import { SqliteTaskStorage } from '../../src/db/sqlite-task-storage.js'
import { RetentionJob } from '../../src/services/retention.js'
import { TaskStore } from '../../src/services/task-store.js'
import type { TaskStatus } from '../../src/services/task-state.js'
import { LogCapture, tempDir } from '../helper.js'

type Test = { teardown: (fn: () => unknown) => void }

const NOW = new Date('2026-06-01T12:00:00.000Z')
const DAY_MS = 24 * 60 * 60 * 1000
const daysAgo = (days: number): string => new Date(NOW.getTime() - days * DAY_MS).toISOString()

function freshDb (t: Test): { db: Db, repo: TasksRepository, dir: string } {
  const dir = tempDir(t)
  const db = openDatabase(join(dir, 's2v.db'), { synchronous: 'NORMAL' })
  t.teardown(() => db.close())
  migrate(db)
  return { db, repo: new TasksRepository(db), dir }
}

let counter = 0
/** A task with two events and an idempotency key, last updated at updatedAt. */
function addTask (repo: TasksRepository, status: TaskStatus, updatedAt: string, archivePath: string | null = null): string {
  counter += 1
  const id = `task-${counter}`
  const task = repo.insertTask({
    id,
    provider: 'minimax',
    model: 'S2V-01',
    status,
    prompt: null,
    prompt_optimizer: null,
    image_ref: 'https://example.com/face.jpg',
    metadata: null,
    callback_token_hash: Buffer.alloc(32),
    caller: 'anonymous',
    created_at: updatedAt,
    notify_url: null,
    next_poll_at: null
  })
  for (const outcome of ['created', 'applied']) {
    repo.insertEvent({ task_seq: task.seq, at: updatedAt, source: 'submit', status, provider_status: null, outcome, detail: null })
  }
  repo.insertIdempotencyKey({ scope: 'anonymous', key: id, request_hash: 'h', task_seq: task.seq, created_at: updatedAt })
  repo.db.prepare('UPDATE tasks SET updated_at = ?, archive_path = ? WHERE seq = ?').run(updatedAt, archivePath, task.seq)
  return id
}

function addOld (repo: TasksRepository, count: number, days = 40): string[] {
  return Array.from({ length: count }, (_, index) => addTask(repo, index % 2 ? 'failed' : 'success', daysAgo(days + index / 1000)))
}

const count = (db: Db, table: string): number => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
const ids = (db: Db): string[] => (db.prepare('SELECT id FROM tasks ORDER BY seq').all() as Array<{ id: string }>).map((row) => row.id)

async function until (check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(5)
  }
}

t.test('only terminal tasks older than the retention go, with their events, keys and archived files', async (t) => {
  const { db, repo, dir } = freshDb(t)
  const oldVideo = join(dir, 'old.mp4')
  const keptVideo = join(dir, 'kept.mp4')
  writeFileSync(oldVideo, 'video')
  writeFileSync(keptVideo, 'video')
  const oldSuccess = addTask(repo, 'success', daysAgo(31), oldVideo)
  const oldFailed = addTask(repo, 'failed', daysAgo(400), join(dir, 'already-gone.mp4'))
  const kept = [
    addTask(repo, 'processing', daysAgo(90)),
    addTask(repo, 'submitting', daysAgo(90)),
    addTask(repo, 'success', daysAgo(29), keptVideo),
    addTask(repo, 'failed', daysAgo(30)) // exactly at the cutoff: not older than it
  ]
  const job = new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 30, batchSize: 100, log: new LogCapture().logger })

  t.same(await job.purgeOnce(NOW), { tasks: 2, files: 2 })
  t.same(ids(db), kept)
  t.notOk(repo.byId(oldSuccess))
  t.notOk(repo.byId(oldFailed))
  t.equal(count(db, 'task_events'), 2 * kept.length, 'the purged tasks\' events went by cascade, the others stayed')
  t.equal(count(db, 'idempotency_keys'), kept.length, 'so did their idempotency keys')
  t.notOk(existsSync(oldVideo), 'the archived video of a purged task is removed')
  t.ok(existsSync(keptVideo), 'a kept task keeps its video')
  t.same(await job.purgeOnce(NOW), { tasks: 0, files: 0 }, 'nothing more to do')
})

t.test('a file that cannot be removed is logged and does not undo the purge', async (t) => {
  const { db, repo } = freshDb(t)
  addTask(repo, 'success', daysAgo(40), '/videos/a.mp4')
  addTask(repo, 'success', daysAgo(41), '/videos/b.mp4')
  const logs = new LogCapture()
  const removed: string[] = []
  const job = new RetentionJob({
    store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))),
    retentionDays: 7,
    batchSize: 10,
    log: logs.logger,
    removeFile: (path) => {
      if (path.endsWith('a.mp4')) throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })
      removed.push(path)
    }
  })
  t.same(await job.purgeOnce(NOW), { tasks: 2, files: 1 })
  t.same(removed, ['/videos/b.mp4'])
  t.equal(count(db, 'tasks'), 0)
  t.match(logs.lines, [{ level: 40, path: '/videos/a.mp4', err: { message: /EACCES/ } }])
})

t.test('each purge deletes at most batchSize tasks, oldest first', async (t) => {
  const { db, repo } = freshDb(t)
  const old = addOld(repo, 25) // each one a little older than the one before
  const job = new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 30, batchSize: 10, log: new LogCapture().logger })
  t.same(await job.purgeOnce(NOW), { tasks: 10, files: 0 })
  t.same(ids(db), old.slice(0, 15), 'the ten oldest went first')
  t.equal((await job.purgeOnce(NOW)).tasks, 10)
  t.equal((await job.purgeOnce(NOW)).tasks, 5)
  t.equal((await job.purgeOnce(NOW)).tasks, 0)
  t.equal(count(db, 'task_events'), 0)
})

t.test('the loop drains every batch at once, then waits for the next interval', async (t) => {
  const { db, repo } = freshDb(t)
  addOld(repo, 35, 400)
  const logs = new LogCapture()
  const job = new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 30, batchSize: 10, log: logs.logger })
  t.teardown(() => job.stop())
  job.start(60_000)
  await until(() => count(db, 'tasks') === 0)
  await until(() => logs.lines.length > 0)
  t.match(logs.lines, [{ level: 30, tasks: 35, batches: 4, msg: /purged/ }], 'one summary line per drain')

  addOld(repo, 5, 400)
  await sleep(100)
  t.equal(count(db, 'tasks'), 5, 'new expired tasks wait for the next interval')
  const started = Date.now()
  await job.stop()
  t.ok(Date.now() - started < 500, 'stop() does not wait for the interval to run out')
})

t.test('a short interval picks up tasks that expired after the previous drain', async (t) => {
  const { db, repo } = freshDb(t)
  const job = new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 30, batchSize: 10, log: new LogCapture().logger })
  t.teardown(() => job.stop())
  job.start(30)
  await sleep(50)
  addOld(repo, 12, 400)
  await until(() => count(db, 'tasks') === 0)
  t.pass('purged by a later interval')
})

t.test('between batches the event loop runs other work (callbacks are never blocked for a whole drain)', async (t) => {
  const { db, repo } = freshDb(t)
  addOld(repo, 60, 400)
  const job = new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 30, batchSize: 5, log: new LogCapture().logger })
  t.teardown(() => job.stop())
  const seen: number[] = []
  const probe = setInterval(() => seen.push(count(db, 'tasks')), 1)
  t.teardown(() => clearInterval(probe))
  job.start(60_000)
  await until(() => count(db, 'tasks') === 0)
  clearInterval(probe)
  t.ok(seen.some((remaining) => remaining > 0 && remaining < 60), `other work ran mid-drain (saw ${[...new Set(seen)].join(', ')} tasks left)`)
  t.ok(seen.every((remaining) => remaining % 5 === 0), 'and only ever between whole batches')
})

t.test('stop() during a drain waits for the batch in progress and nothing is deleted after it', async (t) => {
  const { db, repo } = freshDb(t)
  addOld(repo, 200, 400)
  const job = new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 30, batchSize: 2, log: new LogCapture().logger })
  job.start(60_000)
  await until(() => count(db, 'tasks') < 200)
  await job.stop()
  const left = count(db, 'tasks')
  t.ok(left > 0, `stopped before the backlog was drained (${left} left)`)
  t.equal(left % 2, 0, 'no batch was cut in half')
  await sleep(50)
  t.equal(count(db, 'tasks'), left, 'nothing is deleted after stop() resolved')
  await job.stop()
  t.pass('a second stop() is harmless')
})

t.test('a failing purge is logged and retried at the next interval', async (t) => {
  const { db, repo, dir } = freshDb(t)
  addOld(repo, 3, 400)
  db.pragma('busy_timeout = 10')
  const other = openDatabase(join(dir, 's2v.db'), { synchronous: 'NORMAL' })
  t.teardown(() => other.close())
  other.exec('BEGIN IMMEDIATE') // another writer holds the lock
  const logs = new LogCapture()
  const job = new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 30, batchSize: 10, log: logs.logger })
  t.teardown(() => job.stop())
  job.start(40)
  await until(() => logs.lines.some((line) => line.level === 50))
  t.match(logs.lines.find((line) => line.level === 50), { err: { code: 'SQLITE_BUSY' }, msg: /retrying/ })
  other.exec('COMMIT')
  await until(() => count(db, 'tasks') === 0)
  t.pass('purged once the lock was released')
})

t.test('a purge reads only through indexes: the age index for tasks, a task_seq index for every table that cascades', async (t) => {
  const { db } = freshDb(t)
  const plan = (db.prepare(`EXPLAIN QUERY PLAN ${PURGE_SQL}`).all(NOW.toISOString(), 500) as Array<{ detail: string }>).map((row) => row.detail)
  t.ok(plan.some((step) => /USING INDEX tasks_terminal_by_age/.test(step)), plan.join(' | '))
  t.ok(plan.some((step) => /idempotency_keys USING (COVERING )?INDEX/.test(step)), 'idempotency keys are found by task')
  t.same(plan.filter((step) => /^SCAN|TEMP B-TREE/.test(step)), [], 'no table is scanned whole and nothing is sorted (each would cost seconds on a large database)')
})

t.test('options are checked when the job is built and started', async (t) => {
  const { db } = freshDb(t)
  const log = new LogCapture().logger
  t.throws(() => new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 0, batchSize: 10, log }), RangeError)
  t.throws(() => new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 30, batchSize: 0, log }), RangeError)
  t.throws(() => new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 30, batchSize: 1.5, log }), RangeError)
  const job = new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: 30, batchSize: 10, log })
  t.throws(() => job.start(0), RangeError)
  job.start(60_000)
  t.throws(() => job.start(60_000), /already started/)
  await job.stop()
  await job.stop()
})
