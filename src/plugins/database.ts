// The database: SQLite in one file (the default) or PostgreSQL shared by replicas (DATABASE_URL); opened and migrated
// at start, closed with the app; exposes the engine and the task store.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type pg from 'pg'
import { openDatabase, setBusyTimeout, type Db } from '../db/database.js'
import { migrate } from '../db/migrate.js'
import { WalSync } from '../db/wal-sync.js'
import { TasksRepository } from '../db/tasks-repository.js'
import { SqliteTaskStorage } from '../db/sqlite-task-storage.js'
import { migratePostgres } from '../db/postgres/migrate.js'
import { openPool } from '../db/postgres/pool.js'
import { PostgresTaskStorage } from '../db/postgres/task-storage.js'
import { TaskStore } from '../services/task-store.js'

/** Which engine this replica runs on, for the repositories that have one implementation per engine. */
export type Engine = { kind: 'sqlite', db: Db } | { kind: 'postgres', pool: pg.Pool }

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine
    taskStore: TaskStore
    /** Rejects when the database does not answer a query (GET /readyz). */
    pingDatabase: () => Promise<void>
  }
}

export type DatabasePluginOptions =
  | { kind: 'sqlite', path: string, synchronous: 'FULL' | 'NORMAL', busyTimeoutMs: number }
  | { kind: 'postgres', url: string, poolSize: number }

export default fp<DatabasePluginOptions>(async (app, options) => {
  const taskStore = options.kind === 'postgres' ? await openPostgres(app, options) : openSqlite(app, options)
  app.decorate('taskStore', taskStore)
  const engine = app.engine
  const probe = engine.kind === 'sqlite' ? engine.db.prepare('SELECT 1') : null
  app.decorate('pingDatabase', async () => { probe ? probe.get() : await (engine as Extract<Engine, { kind: 'postgres' }>).pool.query('SELECT 1') })
  // Other replicas' status changes wake this one's waiters (see task-effects); on SQLite there are none to hear.
  app.addHook('onReady', async () => { await taskStore.startRemoteChanges(app.log) })
  app.addHook('onClose', async () => { await taskStore.stopRemoteChanges() })
}, { name: 'database' })

function openSqlite (app: FastifyInstance, options: Extract<DatabasePluginOptions, { kind: 'sqlite' }>): TaskStore {
  const db = openDatabase(options.path, { synchronous: options.synchronous })
  try {
    const applied = migrate(db)
    if (applied.length > 0) app.log.info({ applied }, 'database migrated')
  } catch (err) {
    db.close()
    throw err
  }
  // Migrations could wait for another process's lock; from now on every wait holds up challenges too, so it is short.
  setBusyTimeout(db, options.busyTimeoutMs)
  app.decorate('engine', { kind: 'sqlite', db })
  // FULL: pushes wait for an fsync of their group commit, on the loop or the thread pool (src/db/wal-sync.ts).
  const walSync = options.synchronous === 'FULL' && options.path !== ':memory:' ? new WalSync(db) : null
  // Registered before the task store's own onClose, so it runs after it (onClose hooks run in reverse order).
  app.addHook('onClose', async () => {
    await walSync?.close()
    db.close()
  })
  return new TaskStore(new SqliteTaskStorage(new TasksRepository(db), walSync))
}

async function openPostgres (app: FastifyInstance, options: Extract<DatabasePluginOptions, { kind: 'postgres' }>): Promise<TaskStore> {
  // The URL holds a password: it is never logged, and neither is the error's connection string.
  const pool = openPool(options.url, { max: options.poolSize, onError: (err) => { app.log.warn({ err }, 'an idle PostgreSQL connection failed; the pool made a new one') } })
  try {
    const applied = await migratePostgres(pool)
    if (applied.length > 0) app.log.info({ applied }, 'database migrated')
  } catch (err) {
    await pool.end()
    throw err
  }
  app.decorate('engine', { kind: 'postgres', pool })
  app.addHook('onClose', async () => { await pool.end() })
  return new TaskStore(new PostgresTaskStorage(pool))
}

/** The SQLite handle, for tests and tools (bench/overview.ts) that read or fill SQLite directly; throws on PostgreSQL. */
export function sqliteOf (engine: Engine, what: string): Db {
  if (engine.kind !== 'sqlite') throw new Error(`${what} needs SQLite`)
  return engine.db
}
