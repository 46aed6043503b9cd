// Times one retention batch on a large database: `npx tsx bench/retention.ts [tasks] [batchSize]`.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { openDatabase } from '../src/db/database.js'
import { migrate } from '../src/db/migrate.js'
import { TasksRepository } from '../src/db/tasks-repository.js'
import { SqliteTaskStorage } from '../src/db/sqlite-task-storage.js'
import { RetentionJob } from '../src/services/retention.js'
import { TaskStore } from '../src/services/task-store.js'

const TASKS = Number(process.argv[2] ?? 100_000)
const BATCH = Number(process.argv[3] ?? 500)
// created + applied from the submit, then two pushes: a typical finished task's history
const EVENTS_PER_TASK = 4
// Batches timed; their median is the number to quote.
const BATCHES = 20
// Three tasks in four are expired terminal ones; the rest are recent or still running, interleaved with them.
const EXPIRED_EVERY = 4
const RETENTION_DAYS = 30
const DAY_MS = 24 * 60 * 60 * 1000

const dir = mkdtempSync(join(tmpdir(), 's2v-retention-bench-'))
// FULL, the service's default: each batch pays its fsync like in production
const db = openDatabase(join(dir, 'bench.db'), { synchronous: 'FULL' })
migrate(db)

const insertTask = db.prepare(`INSERT INTO tasks (id, provider, model, status, image_ref, callback_token_hash, caller, created_at, updated_at, archive_path)
  VALUES (?, 'minimax', 'S2V-01', ?, 'https://example.com/face.jpg', zeroblob(32), 'caller', ?, ?, ?)`)
const insertEvent = db.prepare(`INSERT INTO task_events (task_seq, at, source, status, provider_status, outcome, detail)
  VALUES (?, ?, 'callback', 'success', 'success', 'applied', '{"file_id":"268010811835735"}')`)
const insertKey = db.prepare(`INSERT INTO idempotency_keys (scope, key, request_hash, task_seq, response_status, response_body, created_at)
  VALUES ('caller', ?, 'hash', ?, 200, '{"status":"processing"}', ?)`)

const start = Date.parse('2026-01-01T00:00:00.000Z')
const filling = performance.now()
db.transaction(() => {
  for (let i = 0; i < TASKS; i++) {
    const expired = i % EXPIRED_EVERY !== EXPIRED_EVERY - 1
    const at = new Date(start + i * 1000 + (expired ? 0 : 400 * DAY_MS)).toISOString()
    const status = expired ? (i % 2 ? 'success' : 'failed') : (i % 8 === 7 ? 'processing' : 'success')
    const { lastInsertRowid } = insertTask.run(`task-${i}`, status, at, at, i % 2 ? `/videos/task-${i}.mp4` : null)
    for (let e = 0; e < EVENTS_PER_TASK; e++) insertEvent.run(lastInsertRowid, at)
    insertKey.run(`key-${i}`, lastInsertRowid, at)
  }
})()
console.log(`${TASKS} tasks, ${TASKS * EVENTS_PER_TASK} events, ${TASKS} idempotency keys written in ${Math.round(performance.now() - filling)} ms`)

const job = new RetentionJob({ store: new TaskStore(new SqliteTaskStorage(new TasksRepository(db))), retentionDays: RETENTION_DAYS, batchSize: BATCH, log: pino({ level: 'silent' }), removeFile: () => {} })
const now = new Date(start + TASKS * 1000 + (RETENTION_DAYS + 30) * DAY_MS)
const times: number[] = []
for (let b = 0; b < BATCHES; b++) {
  const began = performance.now()
  const { tasks } = await job.purgeOnce(now)
  times.push(performance.now() - began)
  if (tasks !== BATCH) throw new Error(`batch ${b} deleted ${tasks} tasks, expected ${BATCH}`)
}
times.sort((a, b) => a - b)
const ms = (value: number | undefined) => `${(value ?? NaN).toFixed(1)} ms`
console.log(`one batch of ${BATCH} (with ${BATCH * EVENTS_PER_TASK} events and ${BATCH} keys): min ${ms(times[0])}, median ${ms(times[Math.floor(BATCHES / 2)])}, max ${ms(times.at(-1))}`)
db.close()
rmSync(dir, { recursive: true, force: true })
