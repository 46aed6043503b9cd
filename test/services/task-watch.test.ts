// The notifier waiting clients share: one answer per change for all it releases, and only the waiters of that change.
import t from 'tap'
import { EventEmitter } from 'node:events'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { TaskRow } from '../../src/db/tasks-repository.js'
import { build, seedTask, taskId } from '../helper.js'

const success = { status: 'success', providerStatus: 'success', fileId: '205258526306433' } as const

/** A long-poll's answer, as its respond callback gets it; rejects as the poll does. */
function answerOf<T> (poll: (respond: (answer: T) => void) => Promise<void>): Promise<T> {
  return new Promise<T>((resolve, reject) => { poll(resolve).catch(reject) })
}

t.test('the long-polls one change releases share one answer, computed once from one read', async (t) => {
  const app = await build(t, { MAX_WAITERS_PER_CALLER: '1000' })
  const { seq } = await seedTask(app.taskStore, { task_id: taskId() })
  const task = (await app.taskStore.queries.bySeq(seq))!
  const seen: TaskRow[] = []
  const answer = async (row: TaskRow) => { seen.push(row); return { status: row.status } }
  const polls = Array.from({ length: 1000 }, () =>
    answerOf((respond) => app.taskWatch.longPoll(task, { wait: 30, status: 'processing', caller: 'c' }, new EventEmitter(), answer, respond)))
  t.equal(app.taskWatch.size, 1000)

  const repo = app.taskStore.queries
  const bySeq = repo.bySeq.bind(repo)
  let reads = 0
  repo.bySeq = (s) => { if (s === seq) reads += 1; return bySeq(s) }
  t.teardown(() => { repo.bySeq = bySeq })
  const updated = await app.taskStore.applyUpdate(seq, task.task_id, success, 'callback')
  // Resolved before the waiters are told (they hear after the write's own answer): what follows is theirs.
  reads = 0
  const answers = await Promise.all(polls)

  t.equal(seen.length, 1, 'one answer for 1,000 polls')
  t.ok(answers.every((one) => one === answers[0]), 'every poll got that very answer')
  t.same(answers[0], { status: 'success' }, 'of the task after the change')
  t.ok(updated.ok)
  t.equal(reads, 1, 'one read of the task for all of them')
  t.equal(app.taskWatch.size, 0, 'nothing left waiting')
  t.equal(app.taskWatch.admitted, 0, 'every slot given back')
})

t.test('one change answers all its polls in one pass, before any of them goes on; an answer that fails rejects them', async (t) => {
  const app = await build(t)
  const { seq } = await seedTask(app.taskStore, { task_id: taskId() })
  const task = (await app.taskStore.queries.bySeq(seq))!
  const order: string[] = []
  const answer = async (row: TaskRow) => row.status
  const polls = [1, 2, 3].map((n) =>
    app.taskWatch.longPoll(task, { wait: 30, status: 'processing', caller: 'c' }, new EventEmitter(), answer, (status) => { order.push(`respond ${n}: ${status}`) })
      .then(() => { order.push(`went on ${n}`) }))
  await app.taskStore.applyUpdate(seq, task.task_id, success, 'callback')
  await Promise.all(polls)
  t.same(order, ['respond 1: success', 'respond 2: success', 'respond 3: success', 'went on 1', 'went on 2', 'went on 3'])

  const other = await seedTask(app.taskStore, { task_id: taskId() })
  const waiting = (await app.taskStore.queries.bySeq(other.seq))!
  let responded = 0
  const failing = async () => { throw new Error('cannot read') }
  const failed = app.taskWatch.longPoll(waiting, { wait: 30, caller: 'c' }, new EventEmitter(), failing, () => { responded += 1 })
  await app.taskStore.applyUpdate(other.seq, waiting.task_id, success, 'callback')
  await t.rejects(failed, /cannot read/)
  t.equal(responded, 0)
  t.equal(app.taskWatch.admitted, 0, 'its slot given back')
})

t.test('polls that end without a change (the service closing) are answered from their own read', async (t) => {
  const app = await build(t)
  const { seq } = await seedTask(app.taskStore, { task_id: taskId() })
  const task = (await app.taskStore.queries.bySeq(seq))!
  let computed = 0
  const answer = async (row: TaskRow) => { computed += 1; return row.status }
  const polls = Array.from({ length: 3 }, () => answerOf((respond) => app.taskWatch.longPoll(task, { wait: 30, caller: 'c' }, new EventEmitter(), answer, respond)))
  app.taskWatch.close()
  t.same(await Promise.all(polls), ['processing', 'processing', 'processing'])
  t.equal(computed, 3, 'no change to share: one answer each')
})

t.test('shared computes once per change and function; the next change computes anew', async (t) => {
  const app = await build(t)
  const tid = taskId()
  const { seq } = await seedTask(app.taskStore) // submitting: the provider has not named it yet
  const changes: TaskRow[] = []
  const unwatch = app.taskWatch.watch(seq, { onChange: (row) => changes.push(row), onClose: () => {} })
  const other = app.taskWatch.watch(seq, { onChange: (row) => changes.push(row), onClose: () => {} })
  t.teardown(() => { unwatch(); other() })
  await app.taskStore.applyUpdate(seq, tid, { status: 'processing', providerStatus: 'Preparing' }, 'poll')
  await app.taskStore.applyUpdate(seq, tid, { status: 'failed', providerStatus: 'failed', error: { code: '1026', message: 'no' } }, 'callback')
  await nextTurn()
  t.equal(changes.length, 4, 'two watchers, two changes')
  t.equal(changes[0], changes[1], 'the watchers of one change get the same row')
  t.not(changes[1], changes[2], 'a new change is a new row')

  let calls = 0
  const statusOf = (row: TaskRow) => { calls += 1; return `${row.status}:${calls}` }
  const lengthOf = (row: TaskRow) => row.status.length
  t.equal(app.taskWatch.shared(changes[0]!, statusOf), 'processing:1')
  t.equal(app.taskWatch.shared(changes[1]!, statusOf), 'processing:1', 'the second watcher reuses it')
  t.equal(app.taskWatch.shared(changes[0]!, lengthOf), 10, 'another function is another answer')
  t.equal(app.taskWatch.shared(changes[2]!, statusOf), 'failed:2', 'the next change computes anew')
})

t.test('watchers hear of a change after the writer has gone on, and only those watching as it committed', async (t) => {
  const app = await build(t)
  const tid = taskId()
  const { seq } = await seedTask(app.taskStore, { task_id: tid })
  const order: string[] = []
  const leaving = app.taskWatch.watch(seq, { onChange: () => order.push('left, yet told'), onClose: () => {} })
  const staying = app.taskWatch.watch(seq, { onChange: (row) => order.push(`watcher: ${row.status}`), onClose: () => {} })
  const everyTask = app.taskWatch.watchAll({ onChange: (row) => order.push(`all: ${row.status}`), onClose: () => {} })
  t.teardown(() => { staying(); everyTask() })

  await app.taskStore.applyUpdate(seq, tid, { status: 'success', providerStatus: 'success', fileId: '7' }, 'callback')
  // Started after the commit: it has the new state from its own read, and must not take this change for news.
  const late = app.taskWatch.watch(seq, { onChange: () => order.push('late, yet told'), onClose: () => {} })
  t.teardown(late)
  leaving()
  await Promise.resolve()
  order.push('writer went on')
  await nextTurn()
  t.same(order, ['writer went on', 'all: success', 'watcher: success'])
})
