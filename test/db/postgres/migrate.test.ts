// PostgreSQL's migrations on a real cluster: the same schema as SQLite's, applied once across racing replicas, a
// broken file named and rolled back, a newer database refused.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type pg from 'pg'
import { openDatabase, type Db } from '../../../src/db/database.js'
import { listMigrations, migrate, MigrationError } from '../../../src/db/migrate.js'
import { MIGRATION_LOCK_KEY, migratePostgres, POSTGRES_MIGRATIONS_DIR } from '../../../src/db/postgres/migrate.js'
import { rejectionOf, tempDir } from '../../helper.js'
import { havePostgres, openTestPool, startPostgres } from '../../postgres-cluster.js'

// One engine-neutral description of a schema, so the two can be compared with one t.same per aspect.
type Column = { name: string, type: 'integer' | 'text' | 'blob', notNull: boolean, default: string | null }
type Index = { table: string, columns: string[], unique: boolean, partial: boolean }
type ForeignKey = { from: string, to: string, onDelete: string }

// SQLite's declared types and PostgreSQL's types for them (integer or bigint are both SQLite's 64-bit INTEGER).
const SQLITE_TYPES: Record<string, Column['type']> = { INTEGER: 'integer', TEXT: 'text', BLOB: 'blob' }
const POSTGRES_TYPES: Record<string, Column['type']> = { integer: 'integer', bigint: 'integer', text: 'text', bytea: 'blob' }

function sqliteSchema (db: Db) {
  const names = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((row) => row.name)
  const tables: Record<string, Column[]> = {}
  const indexes: Record<string, Index> = {}
  const foreignKeys: ForeignKey[] = []
  for (const table of names) {
    const columns = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string, type: string, notnull: number, dflt_value: string | null, pk: number }>
    // A primary key column is never NULL in either engine (SQLite's INTEGER PRIMARY KEY is the rowid).
    tables[table] = columns.map((column) => ({ name: column.name, type: SQLITE_TYPES[column.type]!, notNull: column.notnull === 1 || column.pk > 0, default: column.dflt_value }))
    // origin 'c': made by CREATE INDEX (the others back a PRIMARY KEY or UNIQUE constraint, compared as columns above).
    for (const index of db.prepare(`PRAGMA index_list(${table})`).all() as Array<{ name: string, unique: number, origin: string, partial: number }>) {
      if (index.origin !== 'c') continue
      const columns = (db.prepare(`PRAGMA index_info(${index.name})`).all() as Array<{ name: string }>).map((column) => column.name)
      indexes[index.name] = { table, columns, unique: index.unique === 1, partial: index.partial === 1 }
    }
    for (const key of db.prepare(`PRAGMA foreign_key_list(${table})`).all() as Array<{ table: string, from: string, to: string, on_delete: string }>) {
      foreignKeys.push({ from: `${table}.${key.from}`, to: `${key.table}.${key.to}`, onDelete: key.on_delete })
    }
  }
  const triggers = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name").all() as Array<{ name: string }>).map((row) => row.name)
  const counts = db.prepare('SELECT status, n FROM task_counts ORDER BY status').all()
  return { tables, indexes, foreignKeys: sortKeys(foreignKeys), triggers, counts }
}

async function postgresSchema (pool: pg.Pool) {
  const { rows: columns } = await pool.query<{ table: string, name: string, type: string, nullable: string, default: string | null }>(`
    SELECT c.table_name AS table, c.column_name AS name, c.data_type AS type, c.is_nullable AS nullable, c.column_default AS default
    FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
    WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.table_name <> 'schema_migrations'
    ORDER BY c.table_name, c.ordinal_position`)
  const tables: Record<string, Column[]> = {}
  for (const column of columns) {
    // PostgreSQL spells a default with its type ('minimax'::text); SQLite keeps the text as written ('minimax').
    const defaultValue = column.default === null ? null : column.default.replace(/::text$/, '')
    const type = POSTGRES_TYPES[column.type] ?? (column.type as Column['type'])
    ;(tables[column.table] ??= []).push({ name: column.name, type, notNull: column.nullable === 'NO', default: defaultValue })
  }
  // Indexes made by CREATE INDEX: those backing a constraint (primary keys, UNIQUE columns) are left out, as in SQLite.
  const { rows: indexRows } = await pool.query<{ name: string, table: string, columns: string[], unique: boolean, partial: boolean }>(`
    SELECT i.relname AS name, r.relname AS table, x.indisunique AS unique, x.indpred IS NOT NULL AS partial,
      ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnatts) AS k ORDER BY k) AS columns
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class r ON r.oid = x.indrelid
    WHERE r.relnamespace = 'public'::regnamespace AND r.relname <> 'schema_migrations'
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)`)
  const indexes: Record<string, Index> = {}
  for (const { name, ...index } of indexRows) indexes[name] = index
  const { rows: keyRows } = await pool.query<{ from: string, to: string, on_delete: string }>(`
    SELECT r.relname || '.' || a.attname AS from, f.relname || '.' || af.attname AS to, c.confdeltype AS on_delete
    FROM pg_constraint c
      JOIN pg_class r ON r.oid = c.conrelid JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
      JOIN pg_class f ON f.oid = c.confrelid JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
    WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace`)
  // pg_constraint's action codes, in SQLite's words.
  const actions: Record<string, string> = { c: 'CASCADE', a: 'NO ACTION', r: 'RESTRICT', n: 'SET NULL', d: 'SET DEFAULT' }
  const foreignKeys = keyRows.map((key) => ({ from: key.from, to: key.to, onDelete: actions[key.on_delete]! }))
  const { rows: triggerRows } = await pool.query<{ name: string }>("SELECT tgname AS name FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = 'tasks'::regclass ORDER BY tgname")
  const { rows: counts } = await pool.query('SELECT status, n FROM task_counts ORDER BY status')
  return { tables, indexes, foreignKeys: sortKeys(foreignKeys), triggers: triggerRows.map((row) => row.name), counts }
}

// Tables SQLite has no use for, each with the reason; every other table must match SQLite's.
const POSTGRES_ONLY: Record<string, string> = {
  shared_limits: 'the create pace and poll budgets every replica shares; one SQLite process keeps them in memory',
  rate_limit_hits: 'the per-caller rate limits every replica counts in; one SQLite process keeps them in @fastify/rate-limit\'s memory'
}

/** The schema without the PostgreSQL-only tables (and their indexes), to compare with SQLite's. */
function withoutPostgresOnly (schema: Awaited<ReturnType<typeof postgresSchema>>): Awaited<ReturnType<typeof postgresSchema>> {
  const only = (table: string) => table in POSTGRES_ONLY
  return {
    ...schema,
    tables: Object.fromEntries(Object.entries(schema.tables).filter(([table]) => !only(table))),
    indexes: Object.fromEntries(Object.entries(schema.indexes).filter(([, index]) => !only(index.table))),
    foreignKeys: schema.foreignKeys.filter((key) => !only(key.from.split('.')[0]!) && !only(key.to.split('.')[0]!))
  }
}

function sortKeys (keys: ForeignKey[]): ForeignKey[] {
  return keys.sort((a, b) => a.from.localeCompare(b.from))
}

if (havePostgres(t, 'PostgreSQL migrations')) {
  const cluster = await startPostgres(t)
  const freshPool = async (t: Test) => openTestPool(t, await cluster.freshDatabase())

  t.test('a fresh database gets every table, column, index, foreign key and trigger of SQLite\'s final schema', async (t) => {
    const pool = await freshPool(t)
    const files = listMigrations(POSTGRES_MIGRATIONS_DIR).map((migration) => migration.file)
    t.ok(files.length >= 1)
    t.same(await migratePostgres(pool), files, 'every file, in order')

    const sqlite = openDatabase(':memory:', { synchronous: 'NORMAL' })
    t.teardown(() => sqlite.close())
    migrate(sqlite)
    const expected = sqliteSchema(sqlite)
    const full = await postgresSchema(pool)
    for (const table of Object.keys(POSTGRES_ONLY)) t.ok(full.tables[table], `${table}: PostgreSQL only (${POSTGRES_ONLY[table]})`)
    // Only the rate limits' counts are unlogged (004): a count need not wait for an fsync; everything else is durable.
    const { rows: unlogged } = await pool.query<{ name: string }>("SELECT relname AS name FROM pg_class WHERE relpersistence = 'u' AND relkind = 'r' ORDER BY relname")
    t.same(unlogged.map((row) => row.name), ['rate_limit_hits'], 'rate_limit_hits is the one unlogged table')
    const actual = withoutPostgresOnly(full)
    t.same(Object.keys(actual.tables).sort(), Object.keys(expected.tables).sort(), 'the same tables')
    for (const [table, columns] of Object.entries(expected.tables)) {
      t.same(actual.tables[table], columns, `${table}: the same columns in the same order, types, NOT NULL and defaults`)
    }
    t.same(Object.keys(actual.indexes).sort(), Object.keys(expected.indexes).sort(), 'the same indexes')
    for (const [name, index] of Object.entries(expected.indexes)) t.same(actual.indexes[name], index, `index ${name}: the same table, columns, uniqueness and partiality`)
    t.same(actual.foreignKeys, expected.foreignKeys, 'the same foreign keys, with their ON DELETE')
    t.same(actual.triggers, expected.triggers, 'the same triggers on tasks')
    t.same(actual.counts, expected.counts, 'task_counts starts with the same rows')

    // Every time column (at, created_at, ...) is ISO text that sorts byte by byte, as SQLite's BINARY collation does.
    const isTime = /(^|_)at$/
    const { rows: times } = await pool.query<{ name: string, domain: string | null }>(
      "SELECT table_name || '.' || column_name AS name, domain_name AS domain FROM information_schema.columns WHERE table_schema = 'public' AND column_name ~ '(^|_)at$' AND table_name <> 'schema_migrations'")
    t.equal(times.length, Object.values(expected.tables).flat().filter((column) => isTime.test(column.name)).length, 'as many time columns as SQLite has')
    t.same(times.filter((column) => column.domain !== 'iso_time'), [], 'every one is an iso_time')
    const { rows: [domain] } = await pool.query("SELECT collation_name FROM information_schema.domains WHERE domain_name = 'iso_time'")
    t.same(domain, { collation_name: 'C' })
  })

  t.test('the constraints and the task_counts triggers behave as in SQLite', async (t) => {
    const pool = await freshPool(t)
    await migratePostgres(pool)
    const insert = (id: string, status: string) => pool.query<{ seq: number, callback_token_hash: Buffer }>(
      `INSERT INTO tasks (id, model, status, image_ref, callback_token_hash, caller, created_at, updated_at)
       VALUES ($1, 'S2V-01', $2, 'https://example.com/a.png', $3, 'anonymous', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')
       RETURNING seq, callback_token_hash`, [id, status, Buffer.from([0, 1, 255])])
    // task_counts holds deltas on PostgreSQL (migration 002): a status's count is the sum of its rows.
    const counts = async () => Object.fromEntries((await pool.query<{ status: string, n: number }>('SELECT status, sum(n)::bigint AS n FROM task_counts GROUP BY status')).rows.map((row) => [row.status, row.n]))

    const { rows: [first] } = await insert('a', 'queued')
    t.same(first, { seq: 1, callback_token_hash: Buffer.from([0, 1, 255]) }, 'seq is a number and the hash a Buffer, as from SQLite')
    await insert('b', 'submitting')
    await insert('c', 'submitting')
    t.same(await counts(), { queued: 1, submitting: 2, processing: 0, success: 0, failed: 0 })
    await pool.query("UPDATE tasks SET status = 'processing' WHERE id = 'a'")
    await pool.query("UPDATE tasks SET status = 'submitting', updated_at = '2026-01-01T00:00:01.000Z' WHERE id = 'b'") // not a change of status
    await pool.query("UPDATE tasks SET status = 'success' WHERE id IN ('b', 'c')")
    t.same(await counts(), { queued: 0, submitting: 0, processing: 1, success: 2, failed: 0 })
    await pool.query("DELETE FROM tasks WHERE id = 'b'")
    t.same(await counts(), { queued: 0, submitting: 0, processing: 1, success: 1, failed: 0 })
    // 5 first rows, 3 inserts, 3 changes of status (two rows each), 1 delete: appended, never updated in place.
    t.same((await pool.query('SELECT count(*) AS n FROM task_counts')).rows, [{ n: 15 }], 'a delta row per insert and delete, two per change')

    await t.rejects(insert('d', 'bogus'), { code: '23514' }, 'status CHECK (check_violation)')
    await t.rejects(insert('a', 'queued'), { code: '23505' }, 'id is UNIQUE (unique_violation)')
    await t.rejects(pool.query("INSERT INTO task_events (task_seq, at, source, outcome) VALUES (999, '2026-01-01T00:00:00.000Z', 'poll', 'applied')"), { code: '23503' }, 'task_seq must name a task (foreign_key_violation)')
    await pool.query("INSERT INTO task_events (task_seq, at, source, outcome) VALUES ($1, '2026-01-01T00:00:00.000Z', 'poll', 'applied')", [first!.seq])
    await pool.query("DELETE FROM tasks WHERE id = 'a'")
    t.same((await pool.query('SELECT count(*) AS n FROM task_events')).rows, [{ n: 0 }], 'a deleted task takes its events along')
    t.same(await counts(), { queued: 0, submitting: 0, processing: 0, success: 1, failed: 0 })
  })

  t.test('a second run applies nothing, and schema_migrations names each file with its version', async (t) => {
    const pool = await freshPool(t)
    const files = await migratePostgres(pool)
    t.same(await migratePostgres(pool), [])
    const { rows } = await pool.query<{ version: number, file: string, applied_at: string }>('SELECT version, file, applied_at FROM schema_migrations ORDER BY version')
    t.same(rows.map((row) => row.file), files)
    t.same(rows.map((row) => row.version), files.map((_, index) => index + 1))
    for (const row of rows) t.match(row.applied_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  t.test('two replicas migrating at once apply each file exactly once', async (t) => {
    const url = await cluster.freshDatabase()
    const [a, b] = [openTestPool(t, url), openTestPool(t, url)]
    const results = await Promise.all([migratePostgres(a), migratePostgres(b)])
    const files = listMigrations(POSTGRES_MIGRATIONS_DIR).map((migration) => migration.file)
    t.same(results.toSorted((x, y) => x.length - y.length), [[], files], 'one applied everything, the other found it done')
    const { rows } = await a.query<{ version: number, n: number }>('SELECT version, count(*) AS n FROM schema_migrations GROUP BY version ORDER BY version')
    t.same(rows, files.map((_, index) => ({ version: index + 1, n: 1 })))
  })

  t.test('a replica gives up waiting for a stuck migrator, and goes ahead once the lock is free', async (t) => {
    const url = await cluster.freshDatabase()
    const holder = openTestPool(t, url)
    const held = await holder.connect()
    // Released before the pool ends (teardowns run last in, first out), even when an assertion below fails.
    t.teardown(() => held.release())
    await held.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()])
    const error = await rejectionOf(migratePostgres(openTestPool(t, url), { lockWaitMs: 200 }), MigrationError)
    t.match(error.message, /gave up waiting for another process's migrations \(advisory lock \d+\) after 200 ms/)
    await held.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()])
    const pool = openTestPool(t, url)
    t.ok((await migratePostgres(pool, { lockWaitMs: 200 })).length >= 1)
    t.same((await pool.query('SHOW statement_timeout')).rows, [{ statement_timeout: '10s' }], 'the pool\'s statement timeout is back on the connection')
  })

  t.test('a failing migration names its file, leaves the database at the previous version and frees the lock', async (t) => {
    const dir = tempDir(t)
    writeFileSync(join(dir, '001-good.sql'), 'CREATE TABLE a (x INTEGER);')
    writeFileSync(join(dir, '002-bad.sql'), 'CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);')
    const pool = await freshPool(t)
    const error = await rejectionOf(migratePostgres(pool, { dir }), MigrationError)
    t.match(error.message, /^migration 002-bad\.sql failed: relation "nowhere" does not exist/)
    t.same((await pool.query('SELECT version, file FROM schema_migrations')).rows, [{ version: 1, file: '001-good.sql' }], 'the good one stays applied')
    t.same((await pool.query("SELECT to_regclass('b') AS b, to_regclass('a') AS a")).rows, [{ b: null, a: 'a' }], 'the bad one rolled back whole')
    t.same((await pool.query('SELECT pg_try_advisory_lock($1) AS free', [MIGRATION_LOCK_KEY.toString()])).rows, [{ free: true }], 'the lock was released')
    await pool.query('SELECT pg_advisory_unlock_all()')

    writeFileSync(join(dir, '002-bad.sql'), 'CREATE TABLE b (x INTEGER);')
    t.same(await migratePostgres(pool, { dir }), ['002-bad.sql'], 'once mended, it applies')
  })

  t.test('a database ahead of the code, or with other files at its versions, is refused', async (t) => {
    const pool = await freshPool(t)
    const files = await migratePostgres(pool)
    // Far above any real count of migrations, whatever lands next.
    await pool.query("INSERT INTO schema_migrations (version, file, applied_at) VALUES (999, '999-future.sql', '2030-01-01T00:00:00.000Z')")
    const ahead = await rejectionOf(migratePostgres(pool), MigrationError)
    t.equal(ahead.message, `the database is at version 999 but this code knows migrations up to ${files.length}: refusing to run an older release on it`)
    await pool.query('DELETE FROM schema_migrations WHERE version = 999')

    const dir = tempDir(t)
    writeFileSync(join(dir, '001-something-else.sql'), 'SELECT 1;')
    // The later files as applied, so only the first one differs.
    for (const file of files.slice(1)) writeFileSync(join(dir, file), 'SELECT 1;')
    const other = await rejectionOf(migratePostgres(pool, { dir }), MigrationError)
    t.match(other.message, new RegExp(`applied ${files[0]!.replace('.', '\\.')} as version 1 but this code has 001-something-else\\.sql there`))
  })
}
