// Bench set-up on PostgreSQL: copies a filled SQLite database's tasks and histories into a migrated PostgreSQL database
// (the same rows the SQLite scenarios read), seeds push tasks, and counts the pushes recorded.
import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import { openDatabase } from '../src/db/database.js'
import { migratePostgres } from '../src/db/postgres/migrate.js'
import { newCallbackToken } from '../src/lib/callback-token.js'
import { PROMPTS, seededTaskId, type PushTarget } from './fill.js'
import { BENCH_CALLER } from './servers.js'

// PostgreSQL takes at most 65,535 parameters in one statement: rows per INSERT are this many parameters' worth.
const PARAMETERS_PER_INSERT = 60_000
// The tables the lookups read, parents first (task_events references tasks).
const COPIED_TABLES = ['tasks', 'task_events'] as const

/** Migrates the database and copies every task and event of the SQLite file, keeping their seq; returns the tasks copied. */
export async function copyFilledTasks (sqlitePath: string, pool: pg.Pool): Promise<number> {
  await migratePostgres(pool)
  const db = openDatabase(sqlitePath, { synchronous: 'NORMAL' })
  try {
    for (const table of COPIED_TABLES) {
      const columns = (db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as Array<{ name: string }>).map((column) => column.name)
      const perInsert = Math.floor(PARAMETERS_PER_INSERT / columns.length)
      const select = db.prepare(`SELECT * FROM ${table} WHERE seq > ? ORDER BY seq LIMIT ${perInsert}`)
      for (let after = 0; ;) {
        const rows = select.all(after) as Array<Record<string, unknown>>
        if (rows.length === 0) break
        const values = rows.map((_, row) => `(${columns.map((_, column) => `$${row * columns.length + column + 1}`).join(', ')})`)
        await pool.query(`INSERT INTO ${table} (${columns.join(', ')}) OVERRIDING SYSTEM VALUE VALUES ${values.join(', ')}`, rows.flatMap((row) => columns.map((column) => row[column])))
        after = rows.at(-1)!.seq as number
      }
      // Explicit seqs leave the identity behind: the service's own inserts continue after the copied rows.
      await pool.query(`SELECT setval(pg_get_serial_sequence('${table}', 'seq'), (SELECT COALESCE(max(seq), 1) FROM ${table}))`)
    }
    // Vacuumed, analysed and checkpointed now: otherwise autovacuum (a million inserted rows) and the checkpointer
    // (their pages) do that work later, in the background, during the SQLite runs that share the machine's two cores.
    await pool.query('VACUUM (ANALYZE)')
    await pool.query('CHECKPOINT')
    return Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM tasks')).rows[0]!.n)
  } finally {
    db.close()
  }
}

/** As fill.ts's seedPushTasks, on PostgreSQL: `count` processing tasks with real callback tokens, in one transaction. */
export async function seedPostgresPushTasks (pool: pg.Pool, count: number, batch: number): Promise<PushTarget[]> {
  const at = new Date().toISOString()
  const seeds = Array.from({ length: count }, (_, i) => {
    const id = randomUUID()
    return { id, taskId: seededTaskId(batch, i), ...newCallbackToken(id) }
  })
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const { rows } = await client.query<{ seq: string }>(`
      INSERT INTO tasks (id, provider, task_id, model, status, prompt, image_ref, callback_token_hash, caller, created_at, updated_at)
      SELECT id, 'minimax', task_id, 'S2V-01', 'processing', $4, 'https://cdn.example.com/faces/push.jpg', hash, $5, $6, $6
      FROM unnest($1::text[], $2::text[], $3::bytea[]) AS seed (id, task_id, hash)
      RETURNING seq`, [seeds.map((seed) => seed.id), seeds.map((seed) => seed.taskId), seeds.map((seed) => seed.hash), PROMPTS[0], BENCH_CALLER, at])
    await client.query(`
      INSERT INTO task_events (task_seq, at, source, status, outcome)
      SELECT seq, $2, 'submit', event.status, event.outcome FROM unnest($1::bigint[]) AS task (seq)
      CROSS JOIN (VALUES (NULL, 'created', 1), ('processing', 'applied', 2)) AS event (status, outcome, n) ORDER BY seq, n`, [rows.map((row) => row.seq), at])
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
  return seeds.map(({ token, taskId }) => ({ token, taskId }))
}

/** How many pushes the tasks of one seeding have in their histories (fill.ts's countPushEvents, on PostgreSQL). */
export async function countPostgresPushEvents (pool: pg.Pool, batch: number): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`
    SELECT count(*) AS n FROM task_events JOIN tasks ON tasks.seq = task_events.task_seq
    WHERE tasks.task_id >= $1 AND tasks.task_id < $2 AND task_events.source = 'callback'`, [seededTaskId(batch, 0), seededTaskId(batch + 1, 0)])
  return Number(rows[0]!.n)
}
