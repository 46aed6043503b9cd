// The engines the storage tests run every case on: a fresh, migrated database each, behind TaskStorage (and
// DeliveriesStorage) or bare.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import type { Test } from 'tap'
import { openDatabase } from '../../src/db/database.js'
import { DeliveriesRepository } from '../../src/db/deliveries-repository.js'
import { migrate } from '../../src/db/migrate.js'
import { migratePostgres } from '../../src/db/postgres/migrate.js'
import { PostgresDeliveriesStorage } from '../../src/db/postgres/deliveries-storage.js'
import { openPool } from '../../src/db/postgres/pool.js'
import { PostgresTaskStorage } from '../../src/db/postgres/task-storage.js'
import { SqliteDeliveriesStorage } from '../../src/db/sqlite-deliveries-storage.js'
import { SqliteTaskStorage } from '../../src/db/sqlite-task-storage.js'
import { TasksRepository } from '../../src/db/tasks-repository.js'
import type { Engine as DatabaseEngine } from '../../src/plugins/database.js'
import type { DeliveriesStorage } from '../../src/services/notifications/deliveries-storage.js'
import type { TaskStorage } from '../../src/services/task-storage.js'
import { tempDir } from '../helper.js'
import { havePostgres, openTestPool, startPostgres } from '../postgres-cluster.js'

export type Engine = {
  name: 'sqlite' | 'postgres'
  open: (t: Test) => Promise<TaskStorage>
  /** A fresh, migrated database as the app's plugins see it, for the storages of other tables; closed in t.teardown. */
  openDatabase: (t: Test) => Promise<DatabaseEngine>
  /** The task and deliveries storages on one fresh, migrated database. */
  openStores: (t: Test) => Promise<Stores>
}

/** Both storages on one database. */
export type Stores = { tasks: TaskStorage, deliveries: DeliveriesStorage }

/** Both storages on the database, as the app's plugins make them. */
export function storesOf (engine: DatabaseEngine): Stores {
  return engine.kind === 'sqlite'
    ? { tasks: new SqliteTaskStorage(new TasksRepository(engine.db)), deliveries: new SqliteDeliveriesStorage(new DeliveriesRepository(engine.db)) }
    : { tasks: new PostgresTaskStorage(engine.pool), deliveries: new PostgresDeliveriesStorage(engine.pool) }
}

async function openSqlite (t: Test): Promise<Extract<DatabaseEngine, { kind: 'sqlite' }>> {
  const db = openDatabase(join(tempDir(t), 's2v.db'), { synchronous: 'NORMAL' })
  t.teardown(() => db.close())
  migrate(db)
  return { kind: 'sqlite', db }
}

export const sqlite: Engine = {
  name: 'sqlite',
  async open (t) {
    return new SqliteTaskStorage(new TasksRepository((await openSqlite(t)).db))
  },
  openDatabase: openSqlite,
  openStores: async (t) => storesOf(await openSqlite(t))
}

export type PostgresEngine = Engine & {
  /**
   * A fresh migrated database's URL, for cases that open pools of their own (several replicas). icuLocale: the
   * database's default collation is that linguistic one (ICU) instead of the cluster's byte order.
   */
  freshUrl: (icuLocale?: string) => Promise<string>
  /** Both storages on a pool of their own to the database at url (another replica). */
  storesOn: (t: Test, url: string) => Stores
}

/**
 * PostgreSQL on a throwaway cluster of this file's, or null (the cases are skipped with the reason, or fail under
 * REQUIRE_POSTGRES=1). Await it before the file's first t.test (see startPostgres).
 */
export async function postgres (t: Test): Promise<PostgresEngine | null> {
  if (!havePostgres(t, 'the task storage on PostgreSQL')) return null
  const cluster = await startPostgres(t)
  const openPostgres = async (t: Test): Promise<Extract<DatabaseEngine, { kind: 'postgres' }>> => {
    const pool = openTestPool(t, await cluster.freshDatabase())
    await migratePostgres(pool)
    return { kind: 'postgres', pool }
  }
  const freshUrl = async (icuLocale?: string) => {
    const url = icuLocale === undefined ? await cluster.freshDatabase() : await linguisticDatabase(cluster.url, icuLocale)
    const pool = openPool(url, { max: 1, onError: (err) => t.fail(`idle connection failed: ${err.message}`) })
    try {
      await migratePostgres(pool)
    } finally {
      await pool.end()
    }
    return url
  }
  return {
    name: 'postgres',
    freshUrl,
    async open (t) {
      return new PostgresTaskStorage((await openPostgres(t)).pool)
    },
    openDatabase: openPostgres,
    openStores: async (t) => storesOf(await openPostgres(t)),
    storesOn: (t, url) => storesOf({ kind: 'postgres', pool: openTestPool(t, url) })
  }
}

/** A new database whose default collation is an ICU locale's (as a production database created with one may be). */
async function linguisticDatabase (adminUrl: string, icuLocale: string): Promise<string> {
  const name = `t_icu_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    // template0: template1 has the cluster's C collation, which a copy of it must keep.
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${icuLocale.replace(/[^\w-]/g, '')}' LOCALE 'C'`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}
