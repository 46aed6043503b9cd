// The submit queue's table rebuild on a database made by the earlier migrations, with rows in every table it touches.
import t from 'tap'
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { openDatabase } from '../../src/db/database.js'
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.js'
import { TasksRepository } from '../../src/db/tasks-repository.js'
import { SqliteTaskStorage } from '../../src/db/sqlite-task-storage.js'
import { TaskStore } from '../../src/services/task-store.js'
import { seedTask, taskId, tempDir } from '../helper.js'

type Row = Record<string, unknown>

t.test('the migration that adds queued keeps every row, column, index, trigger and child row of the old tables', async (t) => {
  // The migrations before the rebuild: every file up to the one that creates task_counts (whatever its number).
  const files = readdirSync(MIGRATIONS_DIR).filter((file) => file.endsWith('.sql')).sort()
  const rebuild = files.findIndex((file) => /'queued', 'submitting'/.test(readFileSync(join(MIGRATIONS_DIR, file), 'utf8')))
  t.ok(rebuild > 0, 'the rebuild migration is found')
  const oldDir = join(tempDir(t), 'old')
  mkdirSync(oldDir)
  for (const file of files.slice(0, rebuild)) copyFileSync(join(MIGRATIONS_DIR, file), join(oldDir, file))

  const db = openDatabase(join(tempDir(t), 's2v.db'), { synchronous: 'NORMAL' })
  t.teardown(() => db.close())
  migrate(db, oldDir)
  // Rows as the old code left them (plain SQL: today's repository knows columns the old schema lacks).
  const insertTask = db.prepare(`INSERT INTO tasks (id, task_id, model, status, provider_status, file_id, error_code, error_message, prompt, image_ref,
    metadata, callback_token_hash, caller, created_at, updated_at) VALUES (?, ?, 'S2V-01', ?, ?, ?, ?, ?, 'p', 'https://example.com/face.jpg', ?, x'00', 'anonymous', ?, ?)`)
  const at = '2026-01-01T00:00:00.000Z'
  const states: Array<[string, string | null, string | null, string | null]> = [['success', 'Success', 'f1', null], ['failed', 'Fail', null, '1027'], ['processing', 'Processing', null, null], ['submitting', null, null, null], ['submitting', null, null, null]]
  const seeded = states.map(([status, providerStatus, fileId, errorCode], i) => {
    const { lastInsertRowid } = insertTask.run(`id-${i}`, i < 3 ? taskId() : null, status, providerStatus, fileId, errorCode, errorCode ? 'x' : null, JSON.stringify({ i }), at, at)
    db.prepare("INSERT INTO task_events (task_seq, at, source, status, outcome) VALUES (?, ?, 'submit', NULL, 'created')").run(lastInsertRowid, at)
    return { seq: Number(lastInsertRowid) }
  })
  db.prepare('UPDATE tasks SET video_url = ?, archive_state = ?, archive_next_at = ?, notify_url = ? WHERE seq = ?').run('https://cdn/x.mp4', 'pending', '2026-01-01T00:00:00.000Z', 'https://hooks/x', seeded[0]!.seq)
  db.prepare("INSERT INTO idempotency_keys (scope, key, request_hash, task_seq, created_at) VALUES ('c', 'k', 'h', ?, '2026-01-01T00:00:00.000Z')").run(seeded[2]!.seq)
  db.prepare(`INSERT INTO notification_deliveries (id, task_seq, url, status, payload, state, next_attempt_at, created_at, updated_at)
    VALUES ('msg_1', ?, 'https://hooks/x', 'success', '{}', 'pending', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`).run(seeded[0]!.seq)
  const snapshot = (sql: string) => db.prepare(sql).all() as Row[]
  const tasksBefore = snapshot('SELECT * FROM tasks ORDER BY seq')
  const eventsBefore = snapshot('SELECT * FROM task_events ORDER BY seq')
  const countsBefore = snapshot('SELECT * FROM task_counts ORDER BY status')
  const indexesBefore = snapshot("SELECT name, sql FROM sqlite_schema WHERE type IN ('index', 'trigger') AND tbl_name IN ('tasks', 'task_counts') ORDER BY name")

  t.same(migrate(db), files.slice(rebuild), 'the rest of the migrations apply')
  t.equal(db.pragma('foreign_keys', { simple: true }), 1, 'foreign keys are on again after migrating')
  const tasksAfter = snapshot('SELECT * FROM tasks ORDER BY seq')
  // Later migrations add columns of their own; every column the old schema had keeps its value.
  const oldColumns = Object.keys(tasksBefore[0]!)
  t.same(tasksAfter.map((row) => Object.fromEntries(oldColumns.map((column) => [column, row[column]]))), tasksBefore, 'every task row and column as it was')
  t.ok(tasksAfter.every((row) => row.queued_request === null && row.queued_at === null && row.sent_at === null), 'the new columns start empty')
  t.same(snapshot('SELECT * FROM task_events ORDER BY seq'), eventsBefore, 'no event lost (the drop did not cascade)')
  t.equal(snapshot('SELECT * FROM idempotency_keys').length, 1, 'idempotency keys kept')
  t.equal(snapshot('SELECT * FROM notification_deliveries').length, 1, 'notification deliveries kept')
  t.same(snapshot("SELECT * FROM task_counts WHERE status <> 'queued' ORDER BY status"), countsBefore, 'counts kept')
  t.same(snapshot("SELECT n FROM task_counts WHERE status = 'queued'"), [{ n: 0 }])
  const indexesAfter = snapshot("SELECT name, sql FROM sqlite_schema WHERE type IN ('index', 'trigger') AND tbl_name IN ('tasks', 'task_counts') ORDER BY name")
  for (const index of indexesBefore) t.ok(indexesAfter.some((after) => after.name === index.name && after.sql === index.sql), `${index.name} recreated as it was`)
  t.same(db.pragma('foreign_key_check'), [], 'no dangling reference')
  t.same(db.pragma('integrity_check'), [{ integrity_check: 'ok' }])

  // The new status works, and the triggers still keep the counts.
  const queued = await seedTask(new TaskStore(new SqliteTaskStorage(new TasksRepository(db))))
  db.prepare("UPDATE tasks SET status = 'queued' WHERE seq = ?").run(queued.seq)
  t.same(snapshot("SELECT n FROM task_counts WHERE status = 'queued'"), [{ n: 1 }])
  t.throws(() => db.prepare("UPDATE tasks SET status = 'bogus' WHERE seq = ?").run(queued.seq), /CHECK constraint/)
  db.prepare('DELETE FROM tasks WHERE seq = ?').run(seeded[0]!.seq)
  t.equal(snapshot('SELECT * FROM notification_deliveries').length, 0, 'ON DELETE CASCADE still points at the new tasks table')
})
