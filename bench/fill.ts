// Bench set-up: fills a service database straight through SQLite (batched transactions of prepared inserts) and seeds push tasks.
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, statSync } from 'node:fs'
import { openDatabase, type Db } from '../src/db/database.js'
import { migrate } from '../src/db/migrate.js'
import { newCallbackToken } from '../src/lib/callback-token.js'
import { BENCH_CALLER } from './servers.js'

// Rows per transaction: large enough that the commit cost vanishes, small enough to keep the WAL short.
const FILL_BATCH_ROWS = 10_000
// Every 20th filled task failed; the rest succeeded, as in a healthy service.
const FAILED_EVERY = 20
// Filled tasks were created one minute apart, ending now: realistic, increasing timestamps.
const CREATED_EVERY_MS = 60_000
// Only the last hour's tasks are still being generated (a video takes minutes), so the service's reconciler finds no
// task past its deadline and does no work of its own during the bench.
const PROCESSING_NEWEST = 60
// How long a filled task took from submit to its last push.
const TASK_DURATION_MS = 180_000
// A callback token hash is a SHA-256.
const HASH_BYTES = 32
// The caller the bench's token is named for (bench/servers.ts), as submit stores it: callers see only their own tasks.
const CALLER = BENCH_CALLER
export const PROMPTS = [
  'A girl waves at the camera in a sunny park, soft light, shallow depth of field',
  'A man in a grey suit walks through a busy train station and turns to smile',
  'The woman from the photo reads a book by a window while rain runs down the glass',
  'A chef tosses vegetables in a pan, steam rising, close-up on his face'
]
const SUCCESS_RESP = JSON.stringify({ status_code: 0, status_msg: 'success' })

export type FillResult = { rows: number, events: number, ms: number, bytes: number, bytesPerTask: number }
export type PushTarget = { token: string, taskId: string }

/** Opens (creating and migrating if needed) a service database for set-up writes: no fsync, the bench re-opens it anyway. */
function openForSetUp (path: string): Db {
  const db = openDatabase(path, { synchronous: 'NORMAL' })
  migrate(db)
  db.pragma('synchronous = OFF')
  return db
}

/** Our id of the n-th filled task: a UUID-shaped string that sorts randomly (like randomUUID) but can be rebuilt from n. */
export function filledTaskId (seq: number): string {
  const a = mix32(seq)
  const b = mix32(seq + 0x9e3779b9)
  const c = mix32(seq ^ 0x5bd1e995)
  return `${hex(a, 8)}-${hex(b >>> 16, 4)}-4${hex(b & 0xfff, 3)}-8${hex(c & 0xfff, 3)}-${hex(seq, 12)}`
}

/** MiniMax's task_id of the n-th filled task: 18 digits, above 2^53, never colliding with seeded push tasks. */
export function filledProviderTaskId (seq: number): string {
  return `3${String(seq).padStart(17, '0')}`
}

/**
 * Writes `count` finished-looking tasks with their histories (created, processing, then success or failed) into a
 * fresh database file, the way the service itself would have left them.
 */
export function fillTasks (path: string, count: number): FillResult {
  if (existsSync(path)) throw new Error(`refusing to fill an existing database: ${path}`)
  const started = performance.now()
  const db = openForSetUp(path)
  const insertTask = db.prepare(`
    INSERT INTO tasks (seq, id, provider, task_id, model, status, provider_status, file_id, error_code, error_message, prompt,
      prompt_optimizer, image_ref, metadata, callback_token_hash, caller, created_at, updated_at)
    VALUES (?, ?, 'minimax', ?, 'S2V-01', ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)`)
  const insertEvent = db.prepare(`
    INSERT INTO task_events (task_seq, at, source, status, provider_status, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`)
  const firstCreated = Date.now() - count * CREATED_EVERY_MS
  let events = 0

  const writeBatch = db.transaction((from: number, to: number) => {
    const hashes = randomBytes(HASH_BYTES * (to - from))
    for (let seq = from; seq < to; seq++) {
      const created = firstCreated + seq * CREATED_EVERY_MS
      const createdAt = new Date(created).toISOString()
      const processingAt = new Date(created + 1_000).toISOString()
      const doneAt = new Date(created + TASK_DURATION_MS).toISOString()
      const status = seq > count - PROCESSING_NEWEST ? 'processing' : seq % FAILED_EVERY === 0 ? 'failed' : 'success'
      const fileId = status === 'success' ? String(200_000_000_000_000 + seq) : null
      const hash = hashes.subarray((seq - from) * HASH_BYTES, (seq - from + 1) * HASH_BYTES)
      insertTask.run(seq, filledTaskId(seq), filledProviderTaskId(seq), status,
        status === 'processing' ? 'Processing' : status === 'success' ? 'success' : 'failed', fileId,
        status === 'failed' ? '1027' : null, status === 'failed' ? 'video output contains sensitive content' : null,
        PROMPTS[seq % PROMPTS.length], `https://cdn.example.com/faces/${seq}.jpg`, seq % 2 === 0 ? `{"ticket":"T-${seq}"}` : null,
        hash, CALLER, createdAt, status === 'processing' ? processingAt : doneAt)
      insertEvent.run(seq, createdAt, 'submit', null, null, 'created', null)
      insertEvent.run(seq, processingAt, 'submit', 'processing', null, 'applied', null)
      events += 2
      if (status !== 'processing') {
        const detail = status === 'success'
          ? `{"base_resp":${SUCCESS_RESP},"file_id":"${fileId}"}`
          : '{"base_resp":{"status_code":1027,"status_msg":"video output contains sensitive content"},"error":{"code":"1027","message":"video output contains sensitive content"}}'
        insertEvent.run(seq, doneAt, 'callback', status, status, 'applied', detail)
        events += 1
      }
    }
  })
  for (let from = 1; from <= count; from += FILL_BATCH_ROWS) writeBatch(from, Math.min(count + 1, from + FILL_BATCH_ROWS))
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  const ms = performance.now() - started
  const bytes = databaseBytes(path)
  return { rows: count, events, ms, bytes, bytesPerTask: bytes / count }
}

/**
 * Adds `count` tasks as a submit leaves them once MiniMax answered (processing, task_id bound, two events), each with a
 * real callback token, and returns the tokens: the push scenarios post to these tasks' own callback URLs.
 */
export function seedPushTasks (path: string, count: number, batch: number): PushTarget[] {
  const db = openForSetUp(path)
  const insertTask = db.prepare(`
    INSERT INTO tasks (id, provider, task_id, model, status, provider_status, prompt, image_ref, callback_token_hash, caller, created_at, updated_at)
    VALUES (?, 'minimax', ?, 'S2V-01', 'processing', NULL, ?, ?, ?, ?, ?, ?)`)
  const insertEvent = db.prepare(`
    INSERT INTO task_events (task_seq, at, source, status, provider_status, outcome, detail) VALUES (?, ?, ?, ?, NULL, ?, NULL)`)
  const targets: PushTarget[] = []
  db.transaction(() => {
    const at = new Date().toISOString()
    for (let i = 0; i < count; i++) {
      const id = randomUUID()
      const { token, hash } = newCallbackToken(id)
      const taskId = seededTaskId(batch, i)
      const { lastInsertRowid } = insertTask.run(id, taskId, PROMPTS[i % PROMPTS.length], 'https://cdn.example.com/faces/push.jpg', hash, CALLER, at, at)
      insertEvent.run(lastInsertRowid, at, 'submit', null, 'created')
      insertEvent.run(lastInsertRowid, at, 'submit', 'processing', 'applied')
      targets.push({ token, taskId })
    }
  })()
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  return targets
}

/** Callback URLs shaped like seeded ones but in no database: the naive push baseline stores whatever it is sent. */
export function unseededPushTargets (count: number, batch: number): PushTarget[] {
  return Array.from({ length: count }, (_, i) => ({ token: newCallbackToken(randomUUID()).token, taskId: seededTaskId(batch, i) }))
}

/** How many pushes the tasks of one seeding have in their histories: every answered push must be there. */
export function countPushEvents (path: string, batch: number): number {
  const db = openDatabase(path, { synchronous: 'NORMAL' })
  try {
    const [from, to] = [seededTaskId(batch, 0), seededTaskId(batch + 1, 0)]
    return (db.prepare(`
      SELECT count(*) AS n FROM task_events JOIN tasks ON tasks.seq = task_events.task_seq
      WHERE tasks.task_id >= ? AND tasks.task_id < ? AND task_events.source = 'callback'`).get(from, to) as { n: number }).n
  } finally {
    db.close()
  }
}

// "4" + batch + index: 18 digits, distinct from filled tasks ("3...") and from every other seeding.
export function seededTaskId (batch: number, index: number): string {
  return `4${String(batch).padStart(5, '0')}${String(index).padStart(12, '0')}`
}

/** The database's size on disk, its WAL included. */
export function databaseBytes (path: string): number {
  return [path, `${path}-wal`].reduce((sum, file) => sum + (existsSync(file) ? statSync(file).size : 0), 0)
}

// murmur3's finaliser: a cheap bijective scramble of 32 bits.
function mix32 (value: number): number {
  let x = value >>> 0
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  return (x ^ (x >>> 16)) >>> 0
}

function hex (value: number, width: number): string {
  return value.toString(16).padStart(width, '0')
}
