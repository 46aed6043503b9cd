// The overview's reads, the same rows on SQLite and PostgreSQL: the same answers, hour by hour and to the millisecond.
import t from 'tap'
import { Registry } from 'prom-client'
import type { Engine as DatabaseEngine } from '../../src/plugins/database.js'
import { StatsRepository } from '../../src/db/stats-repository.js'
import { PostgresStatsRepository } from '../../src/db/postgres/stats-repository.js'
import { overview, type StatsReads } from '../../src/services/stats.js'
import type { Stats } from '../../src/schemas/stats.js'
import { openTestPool } from '../postgres-cluster.js'
import { postgres, sqlite } from './task-storage-engines.js'

// Started before any test is queued (see startPostgres).
const pg = await postgres(t)

const NOW = Date.parse('2026-12-01T12:30:00.000Z')
// A zone with a half-hour offset: a time read as local anywhere would move tasks to other hours and durations by 5.5 h.
const FAR_ZONE = 'Asia/Kolkata'

type Task = { seq: number, status: string, caller: string, created_at: string }
const TASKS: Task[] = [
  { seq: 1, status: 'success', caller: 'team-a', created_at: '2026-12-01T12:00:00.000Z' },
  { seq: 2, status: 'success', caller: 'team-a', created_at: '2026-12-01T11:59:59.999Z' },
  { seq: 3, status: 'failed', caller: 'team-b', created_at: '2026-11-30T13:00:00.000Z' }, // the oldest hour's first ms
  { seq: 4, status: 'processing', caller: 'team-b', created_at: '2026-11-30T12:59:59.999Z' }, // just before the window
  { seq: 5, status: 'success', caller: 'team-b', created_at: '2026-11-30T23:10:00.250Z' }, // success across midnight
  { seq: 6, status: 'queued', caller: 'team-a', created_at: '2026-12-01T12:29:00.000Z' }
]
// [task, at, status, outcome]: the first applied success counts, not a later duplicate nor an earlier refused one.
const EVENTS: Array<[number, string, string | null, string]> = [
  [1, '2026-12-01T12:00:00.000Z', null, 'created'],
  [1, '2026-12-01T12:00:01.500Z', 'success', 'refused'],
  [1, '2026-12-01T12:03:25.125Z', 'success', 'applied'],
  [1, '2026-12-01T12:04:00.000Z', 'success', 'duplicate'],
  [2, '2026-12-01T12:00:00.000Z', 'success', 'applied'],
  [5, '2026-12-01T00:20:00.000Z', 'success', 'applied']
]
// [task, state, round_attempts, caller]
const DELIVERIES: Array<[number, string, number, string]> = [
  [1, 'delivered', 1, 'team-a'], [1, 'pending', 0, 'team-a'], [2, 'pending', 2, 'team-a'], [3, 'failed', 5, 'team-b']
]

type Run = (sql: string, values: unknown[]) => Promise<void>

/** Writes the rows with the same statements on either engine (? placeholders, numbered for PostgreSQL). */
async function seed (run: Run): Promise<void> {
  for (const task of TASKS) {
    await run(`INSERT INTO tasks (seq, id, model, status, image_ref, callback_token_hash, caller, created_at, updated_at)
      VALUES (?, ?, 'S2V-01', ?, 'https://example.com/face.jpg', ?, ?, ?, ?)`, [task.seq, `task-${task.seq}`, task.status, Buffer.from('hash'), task.caller, task.created_at, task.created_at])
  }
  for (const [seq, at, status, outcome] of EVENTS) {
    await run("INSERT INTO task_events (task_seq, at, source, status, outcome) VALUES (?, ?, 'callback', ?, ?)", [seq, at, status, outcome])
  }
  for (const [i, [seq, state, attempts, caller]] of DELIVERIES.entries()) {
    await run(`INSERT INTO notification_deliveries (id, task_seq, url, status, payload, state, round_attempts, next_attempt_at, created_at, updated_at, caller)
      VALUES (?, ?, 'https://example.com/hook', 'success', '{}', ?, ?, NULL, ?, ?, ?)`, [`msg_${i}`, seq, state, attempts, TASKS[0]!.created_at, TASKS[0]!.created_at, caller])
  }
}

async function seeded (database: DatabaseEngine): Promise<StatsReads> {
  if (database.kind === 'sqlite') {
    await seed(async (sql, values) => { database.db.prepare(sql).run(...values) })
    return new StatsRepository(database.db)
  }
  await seed(async (sql, values) => {
    let n = 0
    await database.pool.query(sql.replace(/\?/g, () => `$${++n}`), values)
  })
  return new PostgresStatsRepository(database.pool)
}

const answers = async (repo: StatsReads) => {
  const sources = { repo, budgets: async () => [], registry: new Registry(), challengeMetric: 'none' }
  const of = async (caller: string | undefined): Promise<Stats> => await overview(sources, caller, NOW)
  return { all: await of(undefined), teamA: await of('team-a'), teamB: await of('team-b'), nobody: await of('nobody') }
}

t.test('sqlite: the overview of known rows', async (t) => {
  const { all, teamA, teamB, nobody } = await answers(await seeded(await sqlite.openDatabase(t)))
  t.same(all.tasks.by_status, { queued: 1, submitting: 0, processing: 1, success: 3, failed: 1 })
  t.same(all.last_24h.submit_to_success, { count: 3, median_ms: 205_125, p95_ms: 4_199_750 }, 'the first applied success, to the millisecond')
  t.match(all.last_24h, { created: 5, succeeded: 3, failed: 1, success_rate: 0.75 }, 'the task created a millisecond before the window is out')
  t.same(all.last_24h.hours[0], { hour: '2026-11-30T13:00:00.000Z', success: 0, failed: 1, running: 0 })
  t.same(all.last_24h.hours[23], { hour: '2026-12-01T12:00:00.000Z', success: 1, failed: 0, running: 1 })
  t.same(all.deliveries, { dead: 1, retrying: 1, pending: 2 })
  t.same(teamA.tasks.by_status, { queued: 1, submitting: 0, processing: 0, success: 2, failed: 0 })
  t.same(teamA.deliveries, { dead: 0, retrying: 1, pending: 2 })
  t.same(teamB.last_24h.submit_to_success, { count: 1, median_ms: 4_199_750, p95_ms: 4_199_750 })
  t.equal(nobody.tasks.total, 0)
})

if (pg) {
  t.test('both engines: the same rows give the same overview, everyone\'s and each caller\'s, whatever the session\'s time zone', async (t) => {
    const onSqlite = await answers(await seeded(await sqlite.openDatabase(t)))
    const url = new URL(await pg.freshUrl())
    url.searchParams.set('options', `-c TimeZone=${FAR_ZONE}`)
    const pool = openTestPool(t, url.toString())
    t.same((await pool.query('SHOW TimeZone')).rows, [{ TimeZone: FAR_ZONE }], 'the session is not on UTC')
    const onPostgres = await answers(await seeded({ kind: 'postgres', pool }))
    t.strictSame(onPostgres, onSqlite)
  })
}
