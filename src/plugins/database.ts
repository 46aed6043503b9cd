// The SQLite database: opened and migrated at start, closed with the app; exposes the task store.
import fp from 'fastify-plugin'
import { openDatabase, setBusyTimeout, type Db } from '../db/database.js'
import { migrate } from '../db/migrate.js'
import { WalSync } from '../db/wal-sync.js'
import { TasksRepository } from '../db/tasks-repository.js'
import { SqliteTaskStorage } from '../db/sqlite-task-storage.js'
import { TaskStore } from '../services/task-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
    taskStore: TaskStore
  }
}

export type DatabasePluginOptions = { path: string, synchronous: 'FULL' | 'NORMAL', busyTimeoutMs: number }

export default fp<DatabasePluginOptions>(async (app, options) => {
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
  app.decorate('db', db)
  // FULL: pushes wait for an fsync of their group commit, run off the event loop (src/db/wal-sync.ts).
  const walSync = options.synchronous === 'FULL' && options.path !== ':memory:' ? new WalSync(db) : null
  const taskStore = new TaskStore(new SqliteTaskStorage(new TasksRepository(db), walSync))
  app.decorate('taskStore', taskStore)
  // Other replicas' status changes wake this one's waiters (see task-effects); on SQLite there are none to hear.
  app.addHook('onReady', async () => { await taskStore.startRemoteChanges(app.log) })
  app.addHook('onClose', async () => {
    await taskStore.stopRemoteChanges()
    await walSync?.close()
    db.close()
  })
}, { name: 'database' })
