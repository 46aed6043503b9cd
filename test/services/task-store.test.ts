// Group commit: updates of one event-loop turn share a transaction; one that fails sends the others again alone.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { build, seedTask, taskId } from '../helper.js'

t.test('updates queued in one turn commit in one transaction and resolve after it', async (t) => {
  const app = await build(t)
  const store = app.taskStore
  const tasks = await Promise.all(Array.from({ length: 5 }, async () => await seedTask(store)))
  let writes = 0
  store.events.on('dbWrite', () => { writes++ })
  const results = await Promise.all(tasks.map(async (task) => await store.applyUpdate(task.seq, taskId(), { status: 'processing', providerStatus: 'processing' }, 'callback')))
  t.equal(writes, 1, 'one transaction for five updates')
  t.ok(results.every((result) => result.ok && result.task.status === 'processing'))
  for (const task of tasks) t.equal((await store.queries.byId(task.id))!.status, 'processing', 'committed')
})

t.test('one update that fails rolls back alone', async (t) => {
  const app = await build(t)
  const store = app.taskStore
  const good = await seedTask(store)
  const statuses: string[] = []
  store.events.on('status', ({ task }) => statuses.push(task.id))
  const [fine, broken] = await Promise.allSettled([
    store.applyUpdate(good.seq, taskId(), { status: 'success', providerStatus: 'success', fileId: '1' }, 'callback'),
    store.applyUpdate(987654, taskId(), { status: 'success', providerStatus: 'success' }, 'callback') // no such task
  ])
  t.equal(fine.status, 'fulfilled')
  t.equal(broken.status, 'rejected')
  t.equal((await store.queries.byId(good.id))!.status, 'success', 'the good update is committed')
  t.same(statuses, [good.id], 'only committed changes are announced')
})

t.test('the row an update returns is the row in the database (it is built, not read again)', async (t) => {
  const app = await build(t)
  const store = app.taskStore
  const task = await seedTask(store)
  const providerTaskId = taskId()
  const updates = [
    { status: 'processing', providerStatus: 'Queueing' }, // binds the task_id
    { status: 'processing', providerStatus: 'processing' }, // a duplicate: news only
    { status: 'success', providerStatus: 'success', fileId: '123456789012345678' }, // a change with news
    { status: 'success', providerStatus: 'Success', fileId: '123456789012345678' } // a duplicate of a terminal state
  ] as const
  for (const update of updates) {
    const result = await store.applyUpdate(task.seq, providerTaskId, update, 'callback')
    t.ok(result.ok)
    t.same(result.task, await store.queries.bySeq(task.seq), `after ${update.providerStatus}`)
  }
  const failed = await seedTask(store)
  const result = await store.applyUpdate(failed.seq, null, { status: 'failed', providerStatus: null, error: { code: 'timeout', message: 'x', provisional: true } }, 'timeout')
  t.same(result.task, await store.queries.bySeq(failed.seq), 'our own failure, no task_id')
})

t.test('a lookup finds a task by our id or its task_id with one read, trying the key as what its shape says first', async (t) => {
  const app = await build(t)
  const store = app.taskStore
  const tid = taskId()
  const seeded = await seedTask(store, { task_id: tid, caller: 'alice' })
  const asked: string[] = []
  const lookup = store.queries.lookup
  store.queries.lookup = async (key, value, limit) => { asked.push(key); return await lookup(key, value, limit) }
  t.teardown(() => { store.queries.lookup = lookup })
  const alice = { caller: 'alice', isAdmin: false }

  t.match(await store.lookupFor(alice, seeded.id, 100), { task: { id: seeded.id, task_id: tid }, events: [{ outcome: 'created' }, { outcome: 'applied' }] })
  t.same(asked.splice(0), ['id'], 'a UUID: read as our id, once')
  t.match(await store.lookupFor(alice, tid, 100), { task: { id: seeded.id } })
  t.same(asked.splice(0), ['task_id'], 'digits: read as a task_id, once')
  t.equal(await store.lookupFor({ caller: 'bob', isAdmin: false }, seeded.id, 100), undefined, 'another caller\'s task is not found')
  t.match(await store.lookupFor({ caller: 'ops', isAdmin: true }, tid, 100), { task: { id: seeded.id } }, 'an admin\'s is')
  asked.splice(0)
  t.equal(await store.lookupFor(alice, randomUUID(), 100), undefined)
  t.same(asked.splice(0), ['id', 'task_id'], 'a miss is tried both ways')

  // A provider whose task ids look like ours (a UUID) is still found, second.
  const uuidTaskId = randomUUID()
  const other = await seedTask(store, { task_id: uuidTaskId, caller: 'alice' })
  t.match(await store.lookupFor(alice, uuidTaskId, 100), { task: { id: other.id, task_id: uuidTaskId } })
  t.same(asked.splice(0), ['id', 'task_id'])
  t.match(await store.findFor(alice, uuidTaskId), { id: other.id }, 'and findFor agrees')
  t.match(await store.findFor(alice, tid), { id: seeded.id })
})
