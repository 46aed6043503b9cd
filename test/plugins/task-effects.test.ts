// The one place that wires what a change to a task sets off: each effect follows a change, and all of them let go on close.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { EventEmitter } from 'node:events'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, seedTask, taskId } from '../helper.js'

const SRC = fileURLToPath(new URL('../../src', import.meta.url))

t.test('a status change wakes its waiters, schedules its next poll and is counted; close unsubscribes everything', async (t) => {
  // A configured provider, so the reconciler has a policy for the task (nothing is ever sent to this address).
  const app = await build(t, { MINIMAX_API_KEY: 'k', MINIMAX_BASE_URL: 'http://127.0.0.1:9' })
  const events = app.taskStore.events
  t.ok(events.listenerCount('status') >= 2, 'the delivery worker and the waiters listen')
  t.equal(events.listenerCount('refusedPush'), 1, 'the reconciler listens for refused pushes')
  t.equal(events.listenerCount('push'), 1, 'metrics count pushes')

  const { seq } = await seedTask(app.taskStore)
  const answered = app.taskWatch.waitForChange(seq, 5000, new EventEmitter())
  const result = await app.taskStore.applyUpdate(seq, taskId(), { status: 'processing', providerStatus: 'Processing' }, 'callback')
  t.equal((await answered).outcome, 'changed', 'a waiter on the task was told')
  t.ok(result.ok && result.task.next_poll_at !== null, 'the reconciler\'s policy set the next poll, in the same transaction')
  t.equal((await app.taskStore.queries.bySeq(seq))!.next_poll_at, result.ok ? result.task.next_poll_at : null, 'and it is on disk')

  await app.close()
  for (const name of events.eventNames()) t.equal(events.listenerCount(name), 0, `no listener left on ${String(name)}`)
})

t.test('another replica\'s change wakes the waiters on the task, and nothing else follows it here', async (t) => {
  const app = await build(t, { MINIMAX_API_KEY: 'k', MINIMAX_BASE_URL: 'http://127.0.0.1:9' })
  const events = app.taskStore.events
  t.equal(events.listenerCount('remoteStatus'), 1, 'only the waiters listen (deliveries, nudges and metrics are the committing replica\'s)')
  const { seq } = await seedTask(app.taskStore)
  const answered = app.taskWatch.waitForChange(seq, 5000, new EventEmitter())
  // As the task module emits it once it has read a task another replica changed.
  const task = { ...(await app.taskStore.queries.bySeq(seq))!, status: 'processing' as const }
  events.emit('remoteStatus', { task })
  t.same(await answered, { outcome: 'changed', change: task }, 'a waiter on the task was told, with the row read')
  await app.close()
  t.equal(events.listenerCount('remoteStatus'), 0, 'and close unsubscribes it')
})

t.test('only the task module holds the tasks repository, and only repositories hold SQL on tasks', async (t) => {
  const files = (readdirSync(SRC, { recursive: true }) as string[]).filter((file) => file.endsWith('.ts')).map((file) => join(SRC, file))
  const holders = files.filter((file) => /new TasksRepository\(/.test(readFileSync(file, 'utf8'))).map((file) => relative(SRC, file))
  t.same(holders, ['plugins/database.ts'], 'one repository, made where the database is opened and handed to the task module')
  const writers = files
    .filter((file) => /\b(INSERT INTO|UPDATE|DELETE FROM)\s+(tasks|task_events|idempotency_keys)\b/.test(readFileSync(file, 'utf8')))
    .map((file) => relative(SRC, file))
  t.same(writers.sort(), ['db/postgres/tasks-repository.ts', 'db/tasks-repository.ts'], 'every write to tasks, their events and idempotency keys is in the one repository of each engine')
})
