// kill -9 during a burst of pushes: every push that was answered 200 is in the database after a restart.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { openDatabase } from '../src/db/database.js'
import { migrate } from '../src/db/migrate.js'
import { TasksRepository } from '../src/db/tasks-repository.js'
import { SqliteTaskStorage } from '../src/db/sqlite-task-storage.js'
import { TaskStore } from '../src/services/task-store.js'
import { freePort, getJson, seedTask, taskId, tempDir, startBuiltServer } from './helper.js'

const SERVER = join(import.meta.dirname, '..', 'dist', 'server.js')
const TASKS = 150
// Kill after this many acknowledged pushes, while the rest are still in flight.
const KILL_AFTER = 120

t.test('an answered callback survives kill -9', { skip: existsSync(SERVER) ? false : 'run `npm run build` first (npm test does)' }, async (t) => {
  const databasePath = join(tempDir(t), 's2v.db')
  // Seed tasks as a submit would leave them, with their callback tokens.
  const db = openDatabase(databasePath, { synchronous: 'FULL' })
  migrate(db)
  const store = new TaskStore(new SqliteTaskStorage(new TasksRepository(db)))
  const tasks = await Promise.all(Array.from({ length: TASKS }, async () => ({ ...await seedTask(store), taskId: taskId() })))
  db.close()

  const port = String(await freePort())
  const env = { PORT: port, HOST: '127.0.0.1', DATABASE_PATH: databasePath, CALLBACK_RATE_LIMIT: '100000' }
  const first = await startBuiltServer(t, SERVER, env)
  const acknowledged: Array<{ id: string, status: string }> = []
  let sent = 0
  const push = async (task: typeof tasks[number], status: string) => {
    sent++
    try {
      const res = await fetch(`http://127.0.0.1:${port}/get_callback/${task.token}`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ task_id: task.taskId, status })
      })
      if (res.status === 200) acknowledged.push({ id: task.id, status })
      if (acknowledged.length === KILL_AFTER) first.kill('SIGKILL')
    } catch {} // the connection died with the process: not acknowledged, so nothing is promised
  }
  await Promise.all(tasks.map(async (task) => { await push(task, 'processing'); await push(task, 'success') }))
  await new Promise((resolve) => first.exitCode !== null || first.signalCode !== null ? resolve(null) : first.once('exit', resolve))
  t.equal(first.signalCode, 'SIGKILL', 'the server was killed mid-burst')
  t.ok(acknowledged.length >= KILL_AFTER && acknowledged.length < sent, `${acknowledged.length} of ${sent} pushes acknowledged before the kill`)

  await startBuiltServer(t, SERVER, env)
  let missing = 0
  for (const { id, status } of acknowledged) {
    const task = (await getJson(`http://127.0.0.1:${port}/v1/tasks/${id}`)).body
    const recorded = task.events.some((event: { source: string, provider_status: string }) => event.source === 'callback' && event.provider_status === status)
    const consistent = status === 'success' ? task.status === 'success' : ['processing', 'success'].includes(task.status)
    if (!recorded || !consistent) missing++
  }
  t.equal(missing, 0, 'every acknowledged push is on disk after the restart')
})
