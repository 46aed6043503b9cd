// Applies migrations/postgres/NNN-name.sql in order, each in its own transaction, tracked in schema_migrations, under
// an advisory lock so that replicas starting together apply each file once.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type pg from 'pg'
import { listMigrations, MigrationError, MIGRATIONS_DIR } from '../migrate.js'

export const POSTGRES_MIGRATIONS_DIR = join(MIGRATIONS_DIR, 'postgres')

// The key of the session-level advisory lock every migrator takes. Any fixed number works as long as nothing else in
// the database uses it for another purpose; this one is 's2v-migr' in ASCII, recognisable in pg_locks.
export const MIGRATION_LOCK_KEY = 0x7332762d6d696772n
// How long a replica waits for another one's migrations before giving up. A migration on a large database (an index
// over a million tasks) takes seconds to a minute; a wait of minutes means the other migrator is stuck, and failing
// start-up with a message says so where waiting forever would not.
export const DEFAULT_LOCK_WAIT_MS = 120_000

export type PostgresMigrateOptions = { dir?: string, lockWaitMs?: number }

const TRACKING_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  file       TEXT    NOT NULL,
  applied_at TEXT    NOT NULL
)`

/** Applies what is new; returns the files applied (none when another replica got there first). */
export async function migratePostgres (pool: pg.Pool, options: PostgresMigrateOptions = {}): Promise<string[]> {
  const dir = options.dir ?? POSTGRES_MIGRATIONS_DIR
  const migrations = listMigrations(dir)
  const latest = migrations.at(-1)?.version ?? 0
  const lockWaitMs = Math.max(1, Math.floor(options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS))
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    // statement_timeout bounds the wait for the lock, then is lifted: a migration may rightly run for minutes.
    await client.query(`SET statement_timeout = ${lockWaitMs}`)
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()])
    } catch (err) {
      // 57014 query_canceled: the statement timeout ran out while another session held the lock.
      if ((err as { code?: string }).code !== '57014') throw err
      throw new MigrationError(`gave up waiting for another process's migrations (advisory lock ${MIGRATION_LOCK_KEY}) after ${lockWaitMs} ms`, { cause: err })
    }
    try {
      await client.query('SET statement_timeout = 0')
      // Created under the lock: two sessions running CREATE TABLE IF NOT EXISTS at once can both try to create it.
      await client.query(TRACKING_TABLE)
      const { rows } = await client.query<{ version: number, file: string }>('SELECT version, file FROM schema_migrations ORDER BY version')
      const current = rows.at(-1)?.version ?? 0
      if (current > latest) {
        throw new MigrationError(`the database is at version ${current} but this code knows migrations up to ${latest}: refusing to run an older release on it`)
      }
      for (const row of rows) {
        const known = migrations[row.version - 1]
        if (known?.file !== row.file) {
          throw new MigrationError(`the database applied ${row.file} as version ${row.version} but this code has ${known?.file ?? 'nothing'} there: refusing to run on a schema it does not know`)
        }
      }
      const applied: string[] = []
      for (const { version, file } of migrations.filter((migration) => migration.version > current)) {
        const sql = readFileSync(join(dir, file), 'utf8')
        try {
          await client.query('BEGIN')
          await client.query(sql)
          await client.query('INSERT INTO schema_migrations (version, file, applied_at) VALUES ($1, $2, $3)', [version, file, new Date().toISOString()])
          await client.query('COMMIT')
        } catch (err) {
          await client.query('ROLLBACK').catch((rollback: Error) => { broken = rollback })
          throw new MigrationError(`migration ${file} failed: ${(err as Error).message}`, { cause: err })
        }
        applied.push(file)
      }
      return applied
    } finally {
      // The lock is the session's: released here, or by the server when a broken connection is thrown away below.
      if (!broken) {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]).catch((err: Error) => { broken = err })
      }
    }
  } finally {
    if (!broken) await client.query('RESET statement_timeout').catch((err: Error) => { broken = err })
    client.release(broken)
  }
}
