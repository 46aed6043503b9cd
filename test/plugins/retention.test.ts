// RETENTION_DAYS wires the purge job into the app: old finished tasks go at start, everything else stays.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../../src/app.js'
import { seedTask, taskId, testConfig, sqliteDb } from '../helper.js'

t.test('with RETENTION_DAYS set, finished tasks older than that are purged with their history', async (t) => {
  const app = await buildApp(testConfig(t, { RETENTION_DAYS: '7' }))
  t.teardown(() => app.close())
  const store = app.taskStore
  const old = await seedTask(store, { task_id: taskId() })
  await store.applyUpdate(old.seq, null, { status: 'failed', providerStatus: 'Fail' }, 'poll')
  const running = await seedTask(store, { task_id: taskId() })
  const recent = await seedTask(store, { task_id: taskId() })
  await store.applyUpdate(recent.seq, null, { status: 'success', providerStatus: 'Success' }, 'poll')
  const longAgo = new Date(Date.now() - 8 * 86_400_000).toISOString()
  sqliteDb(app).prepare('UPDATE tasks SET updated_at = ?, created_at = ? WHERE seq IN (?, ?)').run(longAgo, longAgo, old.seq, running.seq)

  await app.ready()
  // The purge that runs on start, in the background: up to 10 s on a loaded machine.
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && await store.queries.byId(old.id);) await sleep(10)
  t.notOk(await store.queries.byId(old.id), 'old finished task purged')
  t.same(await store.queries.eventsOf(old.seq), [], 'its history went with it')
  t.ok(await store.queries.byId(running.id), 'an unfinished task stays, however old')
  t.ok(await store.queries.byId(recent.id), 'a recent finished task stays')
})

t.test('without RETENTION_DAYS nothing is purged', async (t) => {
  const app = await buildApp(testConfig(t))
  t.teardown(() => app.close())
  const old = await seedTask(app.taskStore, { task_id: taskId() })
  await app.taskStore.applyUpdate(old.seq, null, { status: 'failed', providerStatus: 'Fail' }, 'poll')
  sqliteDb(app).prepare("UPDATE tasks SET updated_at = '2000-01-01T00:00:00.000Z' WHERE seq = ?").run(old.seq)
  await app.ready()
  await sleep(50)
  t.ok(await app.taskStore.queries.byId(old.id))
})
