// The per-status counts kept by triggers always equal a real count.
import t from 'tap'
import { build, seedTask, taskId, sqliteDb } from '../helper.js'

t.test('task_counts follows inserts, status changes and deletes', async (t) => {
  const app = await build(t)
  const store = app.taskStore
  const counted = () => Object.fromEntries((sqliteDb(app).prepare('SELECT status, n FROM task_counts ORDER BY status').all() as Array<{ status: string, n: number }>).map((row) => [row.status, row.n]))
  const real = () => Object.fromEntries(['failed', 'processing', 'queued', 'submitting', 'success'].map((status) => [status, (sqliteDb(app).prepare('SELECT count(*) AS n FROM tasks WHERE status = ?').get(status) as { n: number }).n]))

  const tasks = await Promise.all(Array.from({ length: 6 }, async (_, i) => await seedTask(store, i < 4 ? { task_id: taskId() } : {})))
  t.same(counted(), real())
  await store.applyUpdate(tasks[0]!.seq, null, { status: 'success', providerStatus: 'Success' }, 'poll')
  await store.applyUpdate(tasks[1]!.seq, null, { status: 'failed', providerStatus: 'Fail' }, 'poll')
  await store.applyUpdate(tasks[1]!.seq, null, { status: 'success', providerStatus: 'Success' }, 'poll') // a conflict changes nothing
  t.same(counted(), real())
  t.same(counted(), { failed: 1, processing: 2, queued: 0, submitting: 2, success: 1 })
  sqliteDb(app).prepare('DELETE FROM tasks WHERE seq IN (?, ?)').run(tasks[0]!.seq, tasks[5]!.seq)
  t.same(counted(), real())
})
