// The task storage, the same cases on SQLite and PostgreSQL: commands (rows, events, refusals, group commit, hooks)
// and every query; on PostgreSQL also two replicas changing one task at once.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Pool as pgPool } from 'pg'
import t from 'tap'
import { LOOKUP_COLUMNS, type NewTask } from '../../src/db/tasks-repository.js'
import { LOOKUP_EVENTS } from '../../src/schemas/tasks.js'
import type { StatusChange } from '../../src/services/task-events.js'
import { PostgresTaskStorage } from '../../src/db/postgres/task-storage.js'
import { FOLD_COUNTS_AFTER_ROWS, FOLD_COUNTS_LOCK_KEY, PostgresTasksRepository } from '../../src/db/postgres/tasks-repository.js'
import { decide, isTerminal, type StatusUpdate } from '../../src/services/task-state.js'
import { IdempotencyKeyTaken, TaskGone, type ChangeHooks, type TaskStorage, type UpdateArgs, type UpdateResult } from '../../src/services/task-storage.js'
import { stateOf } from '../../src/db/tasks-repository.js'
import { taskId } from '../helper.js'
import { lockWaiters, openTestPool } from '../postgres-cluster.js'
import { postgres, sqlite, type Engine } from './task-storage-engines.js'

// Started before any test is queued (see startPostgres).
const pg = await postgres(t)
const engines: Engine[] = pg ? [sqlite, pg] : [sqlite]

// The scheduler's answer for a task that is not finished: a time no clock produces, so a row showing it was written
// with the scheduler's word.
const NEXT_POLL = '2999-01-01T00:00:00.000Z'

/** Hooks that record every status change their writer is handed, inside the transaction. */
function recording (): { hooks: ChangeHooks, changes: StatusChange[] } {
  const changes: StatusChange[] = []
  return {
    changes,
    hooks: { scheduler: (task) => isTerminal(task.status) ? null : NEXT_POLL, writers: [(change) => { changes.push(change); return [] }] }
  }
}

function newTask (extra: Partial<NewTask> = {}): NewTask {
  return {
    id: randomUUID(),
    provider: 'minimax',
    model: 'S2V-01',
    status: 'submitting',
    prompt: 'a face, smiling',
    prompt_optimizer: 1,
    image_ref: 'https://example.com/face.jpg',
    metadata: null,
    callback_token_hash: Buffer.from('0123456789abcdef0123456789abcdef'),
    caller: 'anonymous',
    created_at: new Date().toISOString(),
    notify_url: null,
    next_poll_at: null,
    ...extra
  }
}

const processing: StatusUpdate = { status: 'processing', providerStatus: 'Queueing' }
const success: StatusUpdate = { status: 'success', providerStatus: 'Success', fileId: '123456789012345678' }
const failed: StatusUpdate = { status: 'failed', providerStatus: 'Fail', error: { code: '1026', message: 'sensitive content' } }

/** One update alone; the result, or the test fails. */
async function apply (storage: TaskStorage, hooks: ChangeHooks, seq: number, id: string | null, update: StatusUpdate, source: 'callback' | 'poll' = 'callback'): Promise<UpdateResult> {
  const [settled] = await storage.applyUpdates([[seq, id, update, source]], hooks)
  if (!settled || !('result' in settled)) throw new Error(`the update failed: ${String((settled as { error?: unknown } | undefined)?.error)}`)
  return settled.result
}

const outcomes = async (storage: TaskStorage, seq: number) => (await storage.queries.eventsOf(seq)).map((event) => event.outcome)

for (const engine of engines) {
  t.test(`${engine.name}: create writes the task, its "created" event and its Idempotency-Key`, async (t) => {
    const storage = await engine.open(t)
    const { hooks, changes } = recording()
    const input = newTask({ metadata: '{"ticket":"T-42"}', notify_url: 'https://example.com/hook' })
    const row = await storage.create(input, { scope: 'caller-a', key: 'key-1', requestHash: 'h1' }, hooks)
    t.match(row, { ...input, callback_token_hash: input.callback_token_hash, updated_at: input.created_at, task_id: null, poll_attempts: 0, archive_attempts: 0, error_provisional: 0 })
    t.ok(Buffer.isBuffer(row.callback_token_hash) && row.callback_token_hash.equals(input.callback_token_hash), 'the token hash comes back as the same bytes')
    t.equal(typeof row.seq, 'number')
    t.same(await storage.queries.bySeq(row.seq), row, 'the row it returns is the row stored')
    t.same(await storage.queries.byId(input.id), row)
    t.same(await storage.queries.callbackTarget(input.id), { seq: row.seq, id: input.id, callback_token_hash: input.callback_token_hash })
    t.same((await storage.queries.eventsOf(row.seq)).map(({ source, status, outcome, detail }) => ({ source, status, outcome, detail })),
      [{ source: 'submit', status: null, outcome: 'created', detail: null }])
    t.same(changes, [], 'a task sent at once is no status change')
    t.match(await storage.queries.idempotencyKey('caller-a', 'key-1'), { scope: 'caller-a', key: 'key-1', request_hash: 'h1', task_seq: row.seq, response_status: null, response_body: null, created_at: input.created_at })
    t.equal(await storage.queries.idempotencyKey('caller-b', 'key-1'), undefined, 'a key is its caller\'s')
    await storage.saveIdempotentResponse('caller-a', 'key-1', 201, '{"task_id":"x"}')
    t.match(await storage.queries.idempotencyKey('caller-a', 'key-1'), { response_status: 201, response_body: '{"task_id":"x"}' })
    const taken = await storage.create(newTask(), { scope: 'caller-a', key: 'key-1', requestHash: 'h2' }, hooks).then(() => null, (err: unknown) => err)
    t.ok(taken instanceof IdempotencyKeyTaken, 'a key is taken once: the named error another submit\'s answer is replayed on')
    t.match(taken, { scope: 'caller-a', key: 'key-1', cause: { code: engine.name === 'sqlite' ? 'SQLITE_CONSTRAINT_PRIMARYKEY' : '23505' } })
    t.equal((await storage.queries.list({ limit: 10 })).length, 1, 'and the refused create left no task behind')
    t.same((await storage.queries.countsByStatus()).filter((row) => row.n > 0), [{ status: 'submitting', n: 1 }], 'nor a count of one')
    t.match(await storage.queries.idempotencyKey('caller-a', 'key-1'), { request_hash: 'h1', task_seq: row.seq }, 'the key stays the first submit\'s')
    const duplicateId = await storage.create(newTask({ id: input.id }), { scope: 'caller-a', key: 'key-2', requestHash: 'h3' }, hooks).then(() => null, (err: unknown) => err)
    t.ok(duplicateId instanceof Error && !(duplicateId instanceof IdempotencyKeyTaken), 'another unique violation is not a taken key')
    t.equal(await storage.queries.idempotencyKey('caller-a', 'key-2'), undefined)

    const queued = await storage.create(newTask({ status: 'queued', queued_request: '{"model":"S2V-01"}', queued_at: input.created_at }), null, hooks)
    t.same(await outcomes(storage, queued.seq), ['created', 'queued'])
    t.same(changes, [{ task: queued, previous: 'queued', source: 'submit' }], 'a queued task goes to the writers')
    t.match(queued, { queued_request: '{"model":"S2V-01"}', queued_at: input.created_at, sent_at: null })
  })

  t.test(`${engine.name}: a push binds the provider's task_id, changes the state and starts polling over`, async (t) => {
    const storage = await engine.open(t)
    const { hooks, changes } = recording()
    const task = await storage.create(newTask(), null, hooks)
    const id = taskId()
    const result = await apply(storage, hooks, task.seq, id, processing)
    t.match(result, { ok: true, previous: 'submitting', decision: { outcome: 'applied', reported: 'processing' } })
    const stored = await storage.queries.bySeq(task.seq)
    t.same(result.task, stored, 'the row it returns is the row stored')
    t.match(stored, { task_id: id, status: 'processing', provider_status: 'Queueing', next_poll_at: NEXT_POLL, poll_attempts: 0 })
    t.equal(stored!.last_news_at, stored!.updated_at, 'the news is the change')
    t.same(await storage.queries.byTaskId(id), stored)
    t.same(changes.map(({ task, previous, source }) => [task.status, previous, source]), [['processing', 'submitting', 'callback']])
    t.same(changes[0]!.task, stored, 'the writers see the row as committed')
    t.match(await storage.queries.eventsOf(task.seq), [{ outcome: 'created' }, { source: 'callback', status: 'processing', provider_status: 'Queueing', outcome: 'applied', detail: null }])

    const done = await apply(storage, hooks, task.seq, id, success)
    t.match(done.task, { status: 'success', file_id: success.fileId, next_poll_at: null }, 'a finished task is not polled')
    t.same(done.task, await storage.queries.bySeq(task.seq))
    t.same(await storage.queries.byFileId(success.fileId!), done.task)
    t.match((await storage.queries.eventsOf(task.seq)).at(-1), { outcome: 'applied', detail: JSON.stringify({ file_id: success.fileId }) })
  })

  t.test(`${engine.name}: another task_id is refused (mismatch), and so is one bound to another task (taken)`, async (t) => {
    const storage = await engine.open(t)
    const { hooks, changes } = recording()
    const task = await storage.create(newTask(), null, hooks)
    const other = await storage.create(newTask(), null, hooks)
    const id = taskId()
    await apply(storage, hooks, task.seq, id, processing)
    const before = await storage.queries.bySeq(task.seq)
    const mismatch = await apply(storage, hooks, task.seq, taskId(), success)
    t.same(mismatch, { ok: false, reason: 'task_id_mismatch', task: before })
    t.same(await storage.queries.bySeq(task.seq), before, 'nothing changed')
    t.same(await outcomes(storage, task.seq), ['created', 'applied'], 'a refused push writes no event')
    const taken = await apply(storage, hooks, other.seq, id, success, 'poll')
    t.same(taken, { ok: false, reason: 'task_id_taken', task: other })
    t.match((await storage.queries.eventsOf(other.seq)).at(-1), { source: 'poll', status: null, provider_status: 'Success', outcome: 'refused', detail: JSON.stringify({ task_id: id, reason: 'task_id_taken' }) },
      'a refusal of our own making is kept in the history')
    t.equal((await storage.queries.bySeq(other.seq))!.task_id, null)
    t.equal(changes.length, 1, 'only the first push changed a status')
  })

  t.test(`${engine.name}: a duplicate is recorded as one and changes nothing but the news`, async (t) => {
    const storage = await engine.open(t)
    const { hooks, changes } = recording()
    const task = await storage.create(newTask(), null, hooks)
    const id = taskId()
    const first = await apply(storage, hooks, task.seq, id, processing)
    await storage.pollAt(task.seq, '2000-01-01T00:00:00.000Z')
    const again = await apply(storage, hooks, task.seq, id, processing)
    t.match(again, { ok: true, decision: { outcome: 'duplicate' }, previous: 'processing' })
    const stored = await storage.queries.bySeq(task.seq)
    t.same(again.task, stored)
    t.match(stored, { status: 'processing', task_id: id, provider_status: first.task.provider_status }, 'the state did not change')
    t.equal(stored!.next_poll_at, NEXT_POLL, 'but the provider is alive: polling starts over')
    t.same(await outcomes(storage, task.seq), ['created', 'applied', 'duplicate'])
    t.equal(changes.length, 1)
    const late = await apply(storage, hooks, task.seq, id, { status: 'processing', providerStatus: 'Processing' })
    t.match(late, { decision: { outcome: 'duplicate' }, task: { provider_status: 'Processing' } }, 'a finer word is still kept')
    t.same(late.task, await storage.queries.bySeq(task.seq))
  })

  t.test(`${engine.name}: a group commits together; one faulty update fails alone`, async (t) => {
    const storage = await engine.open(t)
    const { hooks } = recording()
    const a = await storage.create(newTask(), null, hooks)
    const b = await storage.create(newTask(), null, hooks)
    const [ida, idb] = [taskId(), taskId()]
    const together = await storage.applyUpdates([[b.seq, idb, processing, 'callback'], [a.seq, ida, processing, 'callback'], [b.seq, idb, success, 'callback']], hooks)
    t.match(together, [{ result: { ok: true, decision: { outcome: 'applied' } } }, { result: { ok: true } }, { result: { ok: true, previous: 'processing', task: { status: 'success' } } }],
      'a later update of the group sees what an earlier one wrote')
    t.same(await outcomes(storage, b.seq), ['created', 'applied', 'applied'])

    const settled = await storage.applyUpdates([[a.seq, ida, success, 'callback'], [987654, taskId(), success, 'callback'], [b.seq, idb, failed, 'poll']], hooks)
    t.match(settled[0], { result: { ok: true, task: { status: 'success' } } })
    t.ok(settled[1] && 'error' in settled[1] && settled[1].error instanceof TaskGone, 'the update of a task that does not exist (purged) fails, as TaskGone')
    t.match(settled[2], { result: { ok: true, decision: { outcome: 'conflict' } } })
    t.equal((await storage.queries.bySeq(a.seq))!.status, 'success', 'the others are committed')
    t.same(await outcomes(storage, a.seq), ['created', 'applied', 'applied'], 'once: the group that failed left nothing')
    t.same(await outcomes(storage, b.seq), ['created', 'applied', 'applied', 'conflict'])
    await t.rejects(storage.applyUpdates([[987654, taskId(), success, 'callback']], hooks), TaskGone, 'a group of one fails as itself')
  })

  t.test(`${engine.name}: an update without a task_id gets news only when it finishes the task`, async (t) => {
    const storage = await engine.open(t)
    const { hooks, changes } = recording()
    const task = await storage.create(newTask(), null, hooks)
    const ours = { status: 'failed', providerStatus: null, error: { code: 'submit_outcome_unknown', message: 'x', provisional: true } } as const
    const [settled] = await storage.applyUpdates([[task.seq, null, ours, 'timeout', { trace_id: 't1' }]], hooks)
    const stored = await storage.queries.bySeq(task.seq)
    t.same(settled, { result: { ok: true, task: stored, decision: { outcome: 'applied', reported: 'failed', next: { status: 'failed', provider_status: null, file_id: null, error: ours.error } }, previous: 'submitting' } })
    t.match(stored, { status: 'failed', error_code: 'submit_outcome_unknown', error_provisional: 1, next_poll_at: null, last_news_at: stored!.updated_at })
    t.match((await storage.queries.eventsOf(task.seq)).at(-1), { source: 'timeout', detail: JSON.stringify({ trace_id: 't1', error: ours.error }) })
    t.same(changes.map((change) => change.source), ['timeout'])
    const unknown = await apply(storage, hooks, (await storage.create(newTask(), null, hooks)).seq, null, { status: null, providerStatus: 'Weird' }, 'poll')
    t.match(unknown, { ok: true, decision: { outcome: 'unrecognised' }, task: { status: 'submitting', last_news_at: null } })
  })

  t.test(`${engine.name}: the submit queue's moves, and a move that does not apply`, async (t) => {
    const storage = await engine.open(t)
    const { hooks, changes } = recording()
    const queuedAt = '2026-01-01T00:00:00.000Z'
    const task = await storage.create(newTask({ status: 'queued', queued_request: '{"a":1}', queued_at: queuedAt }), null, hooks)
    const dispatched = await storage.moveInQueue(task.seq, 'dispatch', { detail: { slot: 1 } }, hooks)
    const afterDispatch = await storage.queries.bySeq(task.seq)
    t.same(dispatched, { ok: true, task: afterDispatch, decision: { outcome: 'applied', reported: null, next: { status: 'submitting', provider_status: null, file_id: null, error: null } }, previous: 'queued' })
    t.match(afterDispatch, { status: 'submitting', queued_request: null, queued_at: queuedAt })
    t.equal(afterDispatch!.sent_at, afterDispatch!.updated_at, 'sent now')
    const requeued = await storage.moveInQueue(task.seq, 'requeue', { queuedRequest: '{"a":2}', detail: { code: '1002' } }, hooks)
    t.match(requeued, { ok: true, previous: 'submitting', task: { status: 'queued', queued_request: '{"a":2}', sent_at: null, queued_at: queuedAt } }, 'the first queue time is kept')
    t.same(requeued!.task, await storage.queries.bySeq(task.seq))
    const cancelled = await storage.moveInQueue(task.seq, 'cancel', { error: { code: 'cancelled', message: 'by the caller' } }, hooks)
    t.match(cancelled, { task: { status: 'failed', error_code: 'cancelled', error_message: 'by the caller', queued_request: null, sent_at: null } })
    t.equal(await storage.moveInQueue(task.seq, 'dispatch', {}, hooks), null, 'a failed task is not dispatched')
    t.equal(await storage.moveInQueue(987654, 'cancel', {}, hooks), null, 'nor is a task that does not exist')
    t.match(await storage.queries.eventsOf(task.seq), [
      { outcome: 'created' }, { outcome: 'queued' },
      { source: 'queue', status: 'submitting', outcome: 'dispatched', detail: '{"slot":1}' },
      { source: 'queue', status: 'queued', outcome: 'rate_limited', detail: '{"code":"1002"}' },
      { source: 'cancel', status: 'failed', outcome: 'cancelled', detail: JSON.stringify({ error: { code: 'cancelled', message: 'by the caller' } }) }
    ])
    t.equal((await storage.queries.eventsOf(task.seq)).length, 5, 'the moves that did not apply wrote nothing')
    const other = await storage.create(newTask({ status: 'queued', queued_at: queuedAt }), null, hooks)
    t.match(await storage.moveInQueue(other.seq, 'expire', { error: { code: 'queue_timeout', message: 'waited too long' } }, hooks), { task: { status: 'failed', error_code: 'queue_timeout' } })
    t.match((await storage.queries.eventsOf(other.seq)).at(-1), { source: 'timeout', outcome: 'queue_timeout' })
    const bound = await storage.create(newTask(), null, hooks)
    await apply(storage, hooks, bound.seq, taskId(), processing)
    t.equal(await storage.moveInQueue(bound.seq, 'requeue', {}, hooks), null, 'a task the provider has is never requeued')
    t.same(changes.map(({ task, previous, source }) => [previous, task.status, source]), [
      ['queued', 'queued', 'submit'], ['queued', 'submitting', 'queue'], ['submitting', 'queued', 'queue'], ['queued', 'failed', 'cancel'],
      ['queued', 'queued', 'submit'], ['queued', 'failed', 'timeout'], ['submitting', 'processing', 'callback']
    ])
  })

  t.test(`${engine.name}: events, video links and the poll schedule`, async (t) => {
    const storage = await engine.open(t)
    const { hooks } = recording()
    const task = await storage.create(newTask(), null, hooks)
    const id = taskId()
    await apply(storage, hooks, task.seq, id, processing)
    await storage.recordEvent(task.seq, 'poll', 'poll_failed', { error: 'timeout' }, 'Processing')
    t.match((await storage.queries.eventsOf(task.seq)).at(-1), { source: 'poll', status: null, provider_status: 'Processing', outcome: 'poll_failed', detail: '{"error":"timeout"}' })

    await storage.pollAt(task.seq, '2026-01-01T00:00:00.000Z')
    t.equal((await storage.queries.bySeq(task.seq))!.next_poll_at, '2026-01-01T00:00:00.000Z')
    await storage.backOff(task.seq, 'processing', (fresh) => `2026-02-0${fresh.poll_attempts + 1}T00:00:00.000Z`)
    await storage.backOff(task.seq, 'processing', (fresh) => `2026-02-0${fresh.poll_attempts + 1}T00:00:00.000Z`)
    t.match(await storage.queries.bySeq(task.seq), { next_poll_at: '2026-02-02T00:00:00.000Z', poll_attempts: 2 }, 'each poll without news backs off')
    await storage.backOff(task.seq, 'submitting', () => '2030-01-01T00:00:00.000Z')
    t.match(await storage.queries.bySeq(task.seq), { next_poll_at: '2026-02-02T00:00:00.000Z', poll_attempts: 2 }, 'the status changed since the poll: nothing')
    await storage.backOff(987654, 'processing', () => null)

    await apply(storage, hooks, task.seq, id, success)
    await storage.pollAt(task.seq, '2026-03-01T00:00:00.000Z')
    const link = { url: 'https://cdn.example.com/v.mp4', expiresAt: '2026-03-02T00:00:00.000Z', width: 1280, height: 720, bytes: 5_000_000 }
    const saved = await storage.saveVideoLink(task.seq, link, { archive: true, pollingDone: false })
    t.same(saved, await storage.queries.bySeq(task.seq), 'the row as saved')
    t.match(saved, { video_url: link.url, video_expires_at: link.expiresAt, video_width: 1280, video_height: 720, video_bytes: 5_000_000, archive_state: 'pending', next_poll_at: '2026-03-01T00:00:00.000Z' })
    const pendingSince = saved!.archive_next_at
    t.ok(pendingSince, 'the archive is due now')
    const fresh = await storage.saveVideoLink(task.seq, { ...link, url: 'https://cdn.example.com/v2.mp4', width: null, height: null }, { archive: true, pollingDone: true })
    t.match(fresh, { video_url: 'https://cdn.example.com/v2.mp4', video_width: 1280, video_height: 720, archive_state: 'pending', archive_next_at: pendingSince, next_poll_at: null, poll_attempts: 0 },
      'a fresh link keeps what it does not state, the archive is made pending once, and polling is done')
    t.equal(await storage.saveVideoLink(987654, link, { archive: false, pollingDone: false }), undefined)
    await storage.expireVideoLink(task.seq)
    t.equal((await storage.queries.bySeq(task.seq))!.video_expires_at, '1970-01-01T00:00:00.000Z')

    const stored = { state: 'stored', path: '/videos/a.mp4', bytes: 5_000_000, sha256: 'ab'.repeat(32), attempts: 1, nextAt: null } as const
    t.equal(await storage.recordArchive(task.seq, stored), true)
    t.match(await storage.queries.bySeq(task.seq), { archive_state: 'stored', archive_path: '/videos/a.mp4', archive_bytes: 5_000_000, archive_sha256: 'ab'.repeat(32), archive_attempts: 1, archive_next_at: null })
    t.same(await storage.purgeFinished('2999-01-01T00:00:00.000Z', 10), [{ archive_path: '/videos/a.mp4' }])
    t.equal(await storage.recordArchive(task.seq, stored), false, 'a task purged meanwhile is not archived')
  })

  t.test(`${engine.name}: purgeFinished deletes the oldest finished tasks with everything that is theirs`, async (t) => {
    const storage = await engine.open(t)
    const { hooks } = recording()
    const finish = async (update: StatusUpdate, key: string) => {
      const task = await storage.create(newTask(), { scope: 'caller', key, requestHash: key }, hooks)
      await apply(storage, hooks, task.seq, taskId(), update)
      await storage.recordArchive(task.seq, { state: 'stored', path: `/videos/${key}.mp4`, bytes: 1, sha256: null, attempts: 1, nextAt: null })
      return task
    }
    const oldest = await finish(success, 'k1')
    const older = await finish(failed, 'k2')
    const newest = await finish(success, 'k3')
    const running = await storage.create(newTask(), null, hooks)
    await apply(storage, hooks, running.seq, taskId(), processing)
    const cutoff = new Date(Date.now() + 60_000).toISOString()
    t.same(await storage.purgeFinished(new Date(0).toISOString(), 10), [], 'nothing finished before the cutoff')
    t.same((await storage.purgeFinished(cutoff, 2)).map((row) => row.archive_path).sort(), ['/videos/k1.mp4', '/videos/k2.mp4'], 'oldest updated first, up to the limit')
    for (const [task, key] of [[oldest, 'k1'], [older, 'k2']] as const) {
      t.equal(await storage.queries.bySeq(task.seq), undefined)
      t.same(await storage.queries.eventsOf(task.seq), [], 'its events go with it')
      t.equal(await storage.queries.idempotencyKey('caller', key), undefined, 'and its Idempotency-Key')
    }
    t.ok(await storage.queries.bySeq(newest.seq))
    t.same(await storage.purgeFinished(cutoff, 10), [{ archive_path: '/videos/k3.mp4' }])
    t.ok(await storage.queries.bySeq(running.seq), 'an unfinished task stays')
    t.same(await storage.queries.countsByStatus(), [
      { status: 'failed', n: 0 }, { status: 'processing', n: 1 }, { status: 'queued', n: 0 }, { status: 'submitting', n: 0 }, { status: 'success', n: 0 }
    ], 'the counts follow the deletes')
  })

  t.test(`${engine.name}: list filters, search and pages`, async (t) => {
    const storage = await engine.open(t)
    const { hooks } = recording()
    const create = (extra: Partial<NewTask>) => storage.create(newTask(extra), null, hooks)
    const a = await create({ id: 'abcd_1-aaaa', caller: 'alice', metadata: '{"ticket":"T-42","n":7,"flag":true,"nested":{"x":"T-43"}}' })
    const b = await create({ id: 'abcdX1-bbbb', caller: 'bob', provider: 'modellix', metadata: '["T-42", null]' })
    const c = await create({ id: 'zzzz-cccc', caller: 'alice', metadata: '"solo"' })
    const providerId = taskId()
    await apply(storage, hooks, c.seq, providerId, processing)
    const seqs = async (filter: Parameters<TaskStorage['queries']['list']>[0]) => (await storage.queries.list(filter)).map((row) => row.seq)
    t.same(await seqs({ limit: 10 }), [c.seq, b.seq, a.seq], 'newest first')
    t.same(await seqs({ limit: 2 }), [c.seq, b.seq])
    t.same(await seqs({ limit: 10, beforeSeq: b.seq }), [a.seq], 'the next page')
    t.same(await seqs({ limit: 10, status: 'processing' }), [c.seq])
    t.same(await seqs({ limit: 10, caller: 'alice' }), [c.seq, a.seq])
    t.same(await seqs({ limit: 10, caller: 'alice', status: 'submitting' }), [a.seq])
    t.same(await seqs({ limit: 10, provider: 'modellix' }), [b.seq])
    t.same(await seqs({ limit: 10, provider: 'minimax', caller: 'alice', status: 'processing' }), [c.seq])
    t.same(await seqs({ limit: 10, search: 'zzzz-cccc' }), [c.seq], 'our id')
    t.same(await seqs({ limit: 10, search: providerId }), [c.seq], 'the provider\'s task_id')
    t.same(await seqs({ limit: 10, search: 'abcd' }), [b.seq, a.seq], 'an id prefix')
    t.same(await seqs({ limit: 10, search: 'ABCD' }), [b.seq, a.seq], 'matched as SQLite\'s LIKE does, ASCII case folded')
    t.same(await seqs({ limit: 10, search: 'abcd_' }), [a.seq], 'LIKE\'s wildcards in the term are taken literally')
    t.same(await seqs({ limit: 10, search: 'abc' }), [], 'a prefix shorter than four matches nothing')
    t.same(await seqs({ limit: 10, search: 'T-42' }), [b.seq, a.seq], 'a metadata string value, of an object or an array (as json_each reads them)')
    t.same(await seqs({ limit: 10, search: '7' }), [a.seq], 'a metadata number value')
    t.same(await seqs({ limit: 10, search: 'solo' }), [c.seq], 'metadata that is one string')
    t.same(await seqs({ limit: 10, search: 'true' }), [], 'a boolean is not searched')
    t.same(await seqs({ limit: 10, search: 'T-43' }), [], 'nor a nested value')
    t.same(await seqs({ limit: 10, search: 'T-42', caller: 'alice' }), [a.seq], 'the filters combine')
    t.same(await seqs({ limit: 10, search: 'T-42', caller: 'carol' }), [])
  })

  t.test(`${engine.name}: history in pages`, async (t) => {
    const storage = await engine.open(t)
    const { hooks } = recording()
    const task = await storage.create(newTask(), null, hooks)
    for (let i = 1; i <= 4; i++) await storage.recordEvent(task.seq, 'poll', `o${i}`, {}, null)
    const all = await storage.queries.eventsOf(task.seq)
    t.same(all.map((event) => event.outcome), ['created', 'o1', 'o2', 'o3', 'o4'])
    t.ok(all.every((event, i) => i === 0 || event.seq > all[i - 1]!.seq))
    t.equal(await storage.queries.countEvents(task.seq), 5)
    t.same(await storage.queries.latestEvents(task.seq, 2), [
      { at: all[3]!.at, source: 'poll', status: null, provider_status: null, outcome: 'o3' }, { at: all[4]!.at, source: 'poll', status: null, provider_status: null, outcome: 'o4' }
    ], 'the latest, oldest first, with the columns a lookup shows')
    t.same(await storage.queries.eventsAfter(task.seq, 0, 2), all.slice(0, 2))
    t.same(await storage.queries.eventsAfter(task.seq, all[1]!.seq, 2), all.slice(2, 4))
    t.same(await storage.queries.eventsAfter(task.seq, all[4]!.seq, 2), [])
    t.equal(await storage.queries.countEvents(987654), 0)
  })

  t.test(`${engine.name}: a lookup reads the task's shown columns and its latest events in one statement`, async (t) => {
    const storage = await engine.open(t)
    const { hooks } = recording()
    const task = await storage.create(newTask({ metadata: '{"ticket":"T-42","note":"é \\" \\n ✓"}' }), null, hooks)
    const id = taskId()
    await apply(storage, hooks, task.seq, id, processing)
    await apply(storage, hooks, task.seq, id, failed)
    // Words a JSON round trip must keep exactly: quotes, backslashes, control characters, non-ASCII, an empty string.
    for (const word of ['say "hi"\\', 'tab\tnew\nline\u0001', 'ünïcödé ✓ 😀', '']) await storage.recordEvent(task.seq, 'poll', 'unrecognised', {}, word)
    const row = (await storage.queries.bySeq(task.seq))!
    const shown = Object.fromEntries(LOOKUP_COLUMNS.map((column) => [column, row[column]]))
    for (const [key, value] of [['id', row.id], ['task_id', id]] as const) {
      const found = await storage.queries.lookup(key, value, LOOKUP_EVENTS)
      t.same(found?.task, shown, `by ${key}: the columns a lookup shows, as byId reads them`)
      t.same(Object.keys(found!.task), [...LOOKUP_COLUMNS], 'and no others')
      t.same(found?.events, await storage.queries.latestEvents(task.seq, LOOKUP_EVENTS), 'its events, oldest first, as latestEvents reads them')
    }
    t.same((await storage.queries.lookup('id', row.id, 2))?.events, await storage.queries.latestEvents(task.seq, 2), 'the latest `limit` only')
    t.same((await storage.queries.lookup('id', row.id, 2))?.events.map((event) => event.provider_status), ['ünïcödé ✓ 😀', ''])
    t.equal(await storage.queries.lookup('id', id, LOOKUP_EVENTS), undefined, 'a task_id is not an id')
    t.equal(await storage.queries.lookup('task_id', row.id, LOOKUP_EVENTS), undefined, 'nor an id a task_id')
    t.equal(await storage.queries.lookup('id', randomUUID(), LOOKUP_EVENTS), undefined)
    // SQLite's statements have their LIMIT written in (tasks-repository.ts: limitOf): only a whole number is.
    if (engine.name === 'sqlite') await t.rejects(storage.queries.lookup('id', row.id, 1.5), RangeError)
  })

  t.test(`${engine.name}: the queue's questions`, async (t) => {
    const storage = await engine.open(t)
    const { hooks } = recording()
    const queue = (caller: string, provider = 'minimax', queuedAt = '2026-01-01T00:00:00.000Z') =>
      storage.create(newTask({ status: 'queued', caller, provider, queued_at: queuedAt, queued_request: '{}' }), null, hooks)
    const b1 = await queue('bob')
    const a1 = await queue('alice', 'minimax', '2026-01-02T00:00:00.000Z')
    const b2 = await queue('bob')
    const upper = await queue('Zed')
    const elsewhere = await queue('alice', 'modellix')
    const cancelled = await queue('alice')
    await storage.moveInQueue(cancelled.seq, 'cancel', { error: { code: 'cancelled', message: 'x' } }, hooks)
    t.same(await storage.queries.queueHeads('minimax'), [{ caller: 'Zed', seq: upper.seq }, { caller: 'alice', seq: a1.seq }, { caller: 'bob', seq: b1.seq }], 'by caller, in byte order')
    t.same(await storage.queries.queuedByCaller('minimax'), [{ caller: 'Zed', n: 1 }, { caller: 'alice', n: 1 }, { caller: 'bob', n: 2 }])
    t.equal(await storage.queries.queuedAhead('minimax', 'bob', b2.seq), 1)
    t.equal(await storage.queries.queuedAhead('minimax', 'bob', b1.seq), 0)
    t.equal(await storage.queries.anyQueued('minimax'), true)
    t.equal(await storage.queries.anyQueued('other'), false)
    t.equal(await storage.queries.queuedOfCaller('alice'), 2, 'for every provider')
    const depths = await storage.queries.queueDepths()
    t.same(depths.sort((x, y) => `${x.provider}/${x.caller}`.localeCompare(`${y.provider}/${y.caller}`)), [
      { provider: 'minimax', caller: 'alice', n: 1 }, { provider: 'minimax', caller: 'bob', n: 2 }, { provider: 'minimax', caller: 'Zed', n: 1 }, { provider: 'modellix', caller: 'alice', n: 1 }
    ])
    t.same((await storage.queries.expiredQueued('2026-01-01T12:00:00.000Z', 10)).map((row) => row.seq), [b1.seq, b2.seq, upper.seq, elsewhere.seq], 'still queued since before the cutoff, oldest first')
    t.same((await storage.queries.expiredQueued('2026-01-01T12:00:00.000Z', 1)).map((row) => row.seq), [b1.seq])
    const midnight = new Date(Date.now() - 60_000).toISOString()
    t.equal(await storage.queries.submittedSince('alice', midnight), 2, 'a cancelled task gives its place back')
    t.equal(await storage.queries.submittedSince('alice', new Date(Date.now() + 60_000).toISOString()), 0)
  })

  t.test(`${engine.name}: a claim takes due polls soonest first within its limit and holds them until its lease runs out`, async (t) => {
    const storage = await engine.open(t)
    const { hooks } = recording()
    const at = (time: string) => `2026-01-01T${time}.000Z`
    const create = async (nextPollAt: string | null, provider = 'minimax') => await storage.create(newTask({ next_poll_at: nextPollAt, provider }), null, hooks)
    const late = await create(at('00:00:10'))
    const early = await create(at('00:00:05'))
    const tie = await create(at('00:00:05'))
    await create(at('00:00:01'), 'modellix')
    const notYet = await create(at('00:02:00'))
    await create(null)
    const first = await storage.claimDuePolls('minimax', at('00:01:00'), 2, 60_000)
    t.same(first.map((row) => row.seq), [early.seq, tie.seq], 'soonest due first (a tie by age), of the provider, up to the limit')
    t.ok(first.every((row) => row.next_poll_at === at('00:02:00')), 'each is due again when the lease runs out')
    t.same(first, [await storage.queries.bySeq(early.seq), await storage.queries.bySeq(tie.seq)], 'the rows as claimed are the rows stored')
    t.same((await storage.claimDuePolls('minimax', at('00:01:30'), 10, 60_000)).map((row) => row.seq), [late.seq], 'a claim right after takes none of the first\'s')
    t.same(await storage.claimDuePolls('minimax', at('00:01:30'), 10, 60_000), [], 'nor of the second\'s')
    t.same((await storage.claimDuePolls('minimax', at('00:02:15'), 10, 60_000)).map((row) => row.seq), [early.seq, tie.seq, notYet.seq],
      'after its lease a claimed task is due again (the later claim\'s is not over yet)')
    t.equal((await storage.queries.bySeq(late.seq))!.next_poll_at, at('00:02:30'))
    t.equal((await storage.queries.bySeq(early.seq))!.poll_attempts, 0, 'a claim is no poll: the back-off counts polls without news only')
  })

  t.test(`${engine.name}: a claim takes due archives oldest first within its limit and holds them until its lease runs out`, async (t) => {
    const storage = await engine.open(t)
    const { hooks } = recording()
    const at = (time: string) => `2026-01-01T${time}.000Z`
    const archive = async (state: 'pending' | 'failed', nextAt: string | null) => {
      const task = await storage.create(newTask(), null, hooks)
      await storage.recordArchive(task.seq, { state, path: null, bytes: null, sha256: null, attempts: 1, nextAt })
      return task
    }
    const later = await archive('pending', at('00:00:20'))
    const sooner = await archive('pending', at('00:00:10'))
    const notYet = await archive('pending', at('00:05:00'))
    await archive('failed', null)
    const first = await storage.claimDueArchives(at('00:01:00'), 1, 60_000)
    t.same(first.map((row) => row.seq), [sooner.seq], 'oldest due first, up to the limit')
    t.same(first, [await storage.queries.bySeq(sooner.seq)], 'the row as claimed is the row stored')
    t.match(first[0], { archive_state: 'pending', archive_next_at: at('00:02:00'), archive_attempts: 1 }, 'still pending, due again when the lease runs out')
    t.same((await storage.claimDueArchives(at('00:01:00'), 10, 60_000)).map((row) => row.seq), [later.seq], 'a claim right after takes none of the first\'s')
    t.same(await storage.claimDueArchives(at('00:01:00'), 10, 60_000), [])
    t.same((await storage.claimDueArchives(at('00:02:00'), 10, 60_000)).map((row) => row.seq), [later.seq, sooner.seq], 'after their lease they are due again')
    t.equal((await storage.queries.bySeq(notYet.seq))!.archive_next_at, at('00:05:00'), 'one not due is left as it was')
  })

  t.test(`${engine.name}: stuck creates, deadlines, due archives, counts`, async (t) => {
    const storage = await engine.open(t)
    const { hooks } = recording()
    const late = await storage.create(newTask({ next_poll_at: '2026-01-01T00:00:10.000Z', created_at: '2026-01-01T00:00:00.000Z' }), null, hooks)
    const early = await storage.create(newTask({ next_poll_at: '2026-01-01T00:00:05.000Z', created_at: '2026-01-01T00:00:00.000Z' }), null, hooks)
    await storage.create(newTask({ next_poll_at: '2026-01-01T00:00:05.000Z', provider: 'modellix', created_at: '2026-01-02T00:00:00.000Z' }), null, hooks)
    const recent = await storage.create(newTask({ next_poll_at: '2026-01-02T00:00:00.000Z', created_at: '2026-01-02T00:00:00.000Z' }), null, hooks)
    t.same((await storage.queries.stuckSubmitting('2026-01-01T00:01:00.000Z', 10)).map((row) => row.seq), [late.seq, early.seq], 'no task_id, created before the cutoff')
    await apply(storage, hooks, late.seq, taskId(), processing)
    t.same((await storage.queries.stuckSubmitting('2026-01-01T00:01:00.000Z', 10)).map((row) => row.seq), [early.seq])
    // Past the deadline: late (processing, created before the cutoff), whose next poll (NEXT_POLL) is not within the lease.
    const cutoff = '2026-01-01T00:01:00.000Z'
    t.same(await storage.claimPastDeadline('2025-01-01T00:00:00.000Z', cutoff, 10, 60_000), [], 'none created before an earlier cutoff')
    const withinLease = new Date(Date.parse(NEXT_POLL) - 30_000).toISOString()
    t.same(await storage.claimPastDeadline(cutoff, withinLease, 10, 60_000), [], 'a next poll within the lease may be a claim: left alone')
    const claimed = await storage.claimPastDeadline(cutoff, cutoff, 10, 60_000)
    t.same(claimed.map((row) => row.seq), [late.seq], 'a processing task created before the cutoff')
    t.equal(claimed[0]!.next_poll_at, '2026-01-01T00:02:00.000Z', 'moved to the lease\'s end')
    t.same(await storage.claimPastDeadline(cutoff, '2026-01-01T00:01:30.000Z', 10, 60_000), [], 'a claim right after takes none')
    t.same(await storage.claimPastDeadline(cutoff, '2026-01-01T00:00:59.000Z', 10, 60_000), [], 'nor one by a clock a second behind the first claim\'s')
    t.same((await storage.claimPastDeadline(cutoff, '2026-01-01T00:02:00.000Z', 10, 60_000)).map((row) => row.seq), [late.seq], 'after the lease it is claimed again')
    await storage.pollAt(late.seq, NEXT_POLL)
    await apply(storage, hooks, recent.seq, taskId(), success)
    await storage.saveVideoLink(recent.seq, { url: 'https://cdn.example.com/v.mp4', expiresAt: '2999-01-01T00:00:00.000Z', width: null, height: null }, { archive: true, pollingDone: true })
    t.same(await storage.claimDueArchives('2000-01-01T00:00:00.000Z', 10, 60_000), [], 'the archive is not due before the link came')
    t.same((await storage.claimDueArchives(new Date(Date.now() + 1000).toISOString(), 10, 60_000)).map((row) => row.seq), [recent.seq], 'it is due from then on')
    t.same(await storage.queries.countsByStatus(), [
      { status: 'failed', n: 0 }, { status: 'processing', n: 1 }, { status: 'queued', n: 0 }, { status: 'submitting', n: 2 }, { status: 'success', n: 1 }
    ])
  })
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

/** The same commands, in the same order, on one engine; what they leave behind, times and generated ids aside. */
async function script (storage: TaskStorage): Promise<unknown> {
  const startedAt = new Date().toISOString()
  const { hooks, changes } = recording()
  const ids = ['1111-task', '2222-task', '3333-task']
  const [a, b, c] = [
    await storage.create(newTask({ id: ids[0], metadata: '{"k":"v","n":1.5}', created_at: '2026-01-01T00:00:00.000Z' }), { scope: 's', key: 'k', requestHash: 'h' }, hooks),
    await storage.create(newTask({ id: ids[1], status: 'queued', queued_request: '{}', queued_at: '2026-01-01T00:00:00.000Z', created_at: '2026-01-01T00:00:00.000Z' }), null, hooks),
    await storage.create(newTask({ id: ids[2], created_at: '2026-01-01T00:00:00.000Z' }), null, hooks)
  ]
  await storage.applyUpdates([[a!.seq, '311111111111111111', processing, 'callback'], [a!.seq, '311111111111111111', processing, 'callback'], [c!.seq, '322222222222222222', failed, 'poll']], hooks)
  await storage.applyUpdates([[a!.seq, '311111111111111111', success, 'callback'], [a!.seq, '399999999999999999', failed, 'callback'], [c!.seq, '311111111111111111', success, 'poll']], hooks)
  await storage.saveVideoLink(a!.seq, { url: 'https://cdn.example.com/a.mp4', expiresAt: '2026-01-02T00:00:00.000Z', width: 720, height: 1280, bytes: 10 }, { archive: true, pollingDone: true })
  await storage.recordArchive(a!.seq, { state: 'stored', path: '/v/a.mp4', bytes: 10, sha256: 'ff', attempts: 1, nextAt: null })
  await storage.moveInQueue(b!.seq, 'dispatch', {}, hooks)
  await storage.moveInQueue(b!.seq, 'requeue', { queuedRequest: '{"again":true}' }, hooks)
  await storage.recordEvent(b!.seq, 'queue', 'waiting', { position: 1 }, null)
  await storage.backOff(c!.seq, 'failed', () => '2026-01-03T00:00:00.000Z')
  await storage.saveIdempotentResponse('s', 'k', 200, '{}')
  // Times the commands took from the clock differ from one run to the other; those the script gave do not.
  const anonymous = (value: unknown): unknown => typeof value === 'string' && ISO_TIME.test(value) && value >= startedAt ? '<now>' : value
  const rows = (await storage.queries.list({ limit: 10 })).map((row) => Object.entries(row).map(([column, value]) => [column, anonymous(value)]))
  const events = []
  for (const task of [a!, b!, c!]) events.push(...(await storage.queries.eventsOf(task.seq)).map((event) => Object.entries(event).map(([column, value]) => [column, anonymous(value)])))
  return {
    rows,
    events,
    key: Object.entries((await storage.queries.idempotencyKey('s', 'k'))!),
    counts: await storage.queries.countsByStatus(),
    changes: changes.map(({ task, previous, source }) => [task.id, previous, task.status, source])
  }
}

if (pg) {
  t.test('both engines: the same commands leave the same rows, columns in the same order with the same types, and the same events', async (t) => {
    const [onSqlite, onPostgres] = [await script(await sqlite.open(t)), await script(await pg.open(t))]
    t.strictSame(onPostgres, onSqlite)
  })

  t.test('postgres: two replicas applying conflicting updates to one task at once end as the state machine orders them, nothing lost', async (t) => {
    const url = await pg.freshUrl()
    const [one, two] = [new PostgresTaskStorage(openTestPool(t, url)), new PostgresTaskStorage(openTestPool(t, url))]
    const admin = openTestPool(t, url)
    const { hooks } = recording()
    const task = await one.create(newTask(), null, hooks)
    const id = taskId()
    const before = (await apply(one, hooks, task.seq, id, processing)).task
    // A third session holds the row, so both replicas' transactions are under way before either may read it.
    const blocker = await admin.connect()
    await blocker.query('BEGIN')
    await blocker.query('SELECT 1 FROM tasks WHERE seq = $1 FOR UPDATE', [task.seq])
    const pending = [apply(one, hooks, task.seq, id, success), apply(two, hooks, task.seq, id, failed)]
    await lockWaiters(admin, 2)
    await blocker.query('COMMIT')
    blocker.release()
    const [bySuccess, byFailure] = await Promise.all(pending)

    const events = (await one.queries.eventsOf(task.seq)).slice(2)
    t.equal(events.length, 2, 'both updates are in the history')
    const order = events.map((event) => event.provider_status === 'Success' ? success : failed)
    const firstDecision = decide(stateOf(before), order[0]!)
    const secondDecision = decide(firstDecision.next, order[1]!)
    t.same(events.map((event) => event.outcome), [firstDecision.outcome, secondDecision.outcome])
    t.same(events.map((event) => event.outcome), ['applied', 'conflict'], 'the second saw the first\'s verdict')
    t.same(stateOf((await two.queries.bySeq(task.seq))!), secondDecision.next, 'the first verdict stands')
    const [first, second] = order[0] === success ? [bySuccess!, byFailure!] : [byFailure!, bySuccess!]
    t.match(first, { ok: true, previous: 'processing', decision: { outcome: 'applied' } })
    t.match(second, { ok: true, previous: first.task.status, decision: { outcome: 'conflict' } })
    t.same(await one.queries.countsByStatus().then((counts) => counts.filter((row) => row.n > 0)), [{ status: first.task.status, n: 1 }])
  })

  t.test('postgres: two replicas claiming at once get disjoint sets of due polls and archives, every due one in one of them', async (t) => {
    const url = await pg.freshUrl()
    const [one, two] = [new PostgresTaskStorage(openTestPool(t, url)), new PostgresTaskStorage(openTestPool(t, url))]
    const admin = openTestPool(t, url)
    const { hooks } = recording()
    const due = '2026-01-01T00:00:00.000Z'
    const seqs: number[] = []
    for (let i = 0; i < 40; i++) {
      const task = await one.create(newTask({ next_poll_at: due }), null, hooks)
      await one.recordArchive(task.seq, { state: 'pending', path: null, bytes: null, sha256: null, attempts: 0, nextAt: due })
      seqs.push(task.seq)
    }
    // A third session holds the table, so both claims wait for it and then run together from the same view of it:
    // only the row locks (FOR UPDATE SKIP LOCKED) keep them from taking the same tasks.
    for (const claim of [(s: PostgresTaskStorage) => s.claimDuePolls('minimax', '2026-01-01T00:01:00.000Z', 25, 60_000), (s: PostgresTaskStorage) => s.claimDueArchives('2026-01-01T00:01:00.000Z', 25, 60_000)]) {
      const blocker = await admin.connect()
      await blocker.query('BEGIN')
      await blocker.query('LOCK TABLE tasks IN EXCLUSIVE MODE')
      const claims = [claim(one), claim(two)]
      await lockWaiters(admin, 2)
      await blocker.query('COMMIT')
      blocker.release()
      const [a, b] = (await Promise.all(claims)).map((rows) => rows.map((row) => row.seq))
      t.equal(a!.filter((seq) => b!.includes(seq)).length, 0, 'no task in both claims')
      t.same([...a!, ...b!].sort((x, y) => x - y), seqs, 'and every due task in one of them (each took up to 25 of 40)')
    }
  })

  t.test('postgres: two replicas applying groups that share tasks, in opposite orders, do not deadlock', async (t) => {
    const url = await pg.freshUrl()
    const [one, two] = [new PostgresTaskStorage(openTestPool(t, url)), new PostgresTaskStorage(openTestPool(t, url))]
    const admin = openTestPool(t, url)
    const { hooks } = recording()
    const [a, b] = [await one.create(newTask(), null, hooks), await one.create(newTask(), null, hooks)]
    const [ida, idb] = [taskId(), taskId()]
    // Both rows held, so both groups start before either may lock one: each, left to lock in its own order, would
    // get its first task and wait for the other's.
    const blocker = await admin.connect()
    await blocker.query('BEGIN')
    await blocker.query('SELECT 1 FROM tasks WHERE seq = ANY($1::bigint[]) FOR UPDATE', [[a.seq, b.seq]])
    const groups = [
      one.applyUpdates([[a.seq, ida, processing, 'callback'], [b.seq, idb, processing, 'callback']], hooks),
      two.applyUpdates([[b.seq, idb, success, 'callback'], [a.seq, ida, success, 'callback']], hooks)
    ]
    await lockWaiters(admin, 2)
    await blocker.query('COMMIT')
    blocker.release()
    const settled = await Promise.all(groups)
    t.ok(settled.flat().every((item) => 'result' in item && item.result.ok), 'every update applied')
    for (const task of [a, b]) t.equal((await one.queries.eventsOf(task.seq)).length, 3, 'both groups wrote their event')
  })

  t.test('postgres: a write that waited too long for a lock is busy, and its group fails whole', async (t) => {
    const url = await pg.freshUrl()
    const storage = new PostgresTaskStorage(openTestPool(t, url, { statementTimeoutMs: 300 }))
    const admin = openTestPool(t, url)
    const { hooks } = recording()
    const [a, b] = [await storage.create(newTask(), null, hooks), await storage.create(newTask(), null, hooks)]
    const blocker = await admin.connect()
    t.teardown(() => blocker.release())
    await blocker.query('BEGIN')
    await blocker.query('SELECT 1 FROM tasks WHERE seq = $1 FOR UPDATE', [b.seq])
    const err = await storage.applyUpdates([[a.seq, taskId(), processing, 'callback'], [b.seq, taskId(), processing, 'callback']], hooks).then(() => null, (error: unknown) => error)
    t.match(err, { code: '57014' }, 'the statement timeout cancelled the wait')
    t.ok(storage.isBusy(err), 'busy: every write would fail alike, none is tried alone')
    t.equal((await storage.queries.bySeq(a.seq))!.status, 'submitting', 'the group rolled back whole')
    t.same(await outcomes(storage, a.seq), ['created'])
    t.notOk(storage.isBusy(new Error('no task with seq 1')), 'one update\'s fault is not busy')
    await blocker.query('ROLLBACK')
  })

  t.test('postgres: a connection lost mid-transaction fails its group whole, and the process and the pool carry on', async (t) => {
    const url = await pg.freshUrl()
    const storage = new PostgresTaskStorage(openTestPool(t, url))
    const admin = openTestPool(t, url)
    const { hooks } = recording()
    const [a, b] = [await storage.create(newTask(), null, hooks), await storage.create(newTask(), null, hooks)]
    const blocker = await admin.connect()
    t.teardown(() => blocker.release())
    await blocker.query('BEGIN')
    await blocker.query('SELECT 1 FROM tasks WHERE seq = $1 FOR UPDATE', [b.seq])
    const group = storage.applyUpdates([[a.seq, taskId(), processing, 'callback'], [b.seq, taskId(), processing, 'callback']], hooks).then(() => null, (error: unknown) => error)
    await lockWaiters(admin, 1)
    // The server ends the waiting session, as a restart or an operator would.
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    const err = await group
    t.ok(err instanceof Error, 'the group rejects')
    t.notOk(storage.isBusy(err), 'a lost server is no lock to wait for')
    await blocker.query('ROLLBACK')
    t.same(await outcomes(storage, a.seq), ['created'], 'nothing of it was kept, and no update was tried again alone')
    t.match(await apply(storage, hooks, a.seq, taskId(), processing), { ok: true }, 'the pool serves the next write on a new connection')
  })

  t.test('postgres: on a database with a linguistic default collation, names still sort in byte order, as in SQLite', async (t) => {
    const url = await pg.freshUrl('en-US')
    const pool = openTestPool(t, url)
    const { rows: [probe] } = await pool.query<{ sorted: string[] }>("SELECT array_agg(c ORDER BY c) AS sorted FROM unnest(ARRAY['bob', 'Zed', 'alice']) AS c")
    t.same(probe!.sorted, ['alice', 'bob', 'Zed'], 'the database sorts text linguistically by default')
    const storage = new PostgresTaskStorage(pool)
    const { hooks } = recording()
    const heads: Record<string, number> = {}
    for (const caller of ['bob', 'Zed', 'alice']) {
      heads[caller] = (await storage.create(newTask({ status: 'queued', caller, queued_at: '2026-01-01T00:00:00.000Z' }), null, hooks)).seq
    }
    t.same(await storage.queries.queueHeads('minimax'), [{ caller: 'Zed', seq: heads.Zed }, { caller: 'alice', seq: heads.alice }, { caller: 'bob', seq: heads.bob }])
    t.same((await storage.queries.queuedByCaller('minimax')).map((row) => row.caller), ['Zed', 'alice', 'bob'])
  })

  t.test('postgres: a task_id another replica binds to another task meanwhile is refused as taken', async (t) => {
    const url = await pg.freshUrl()
    const [one, two] = [new PostgresTaskStorage(openTestPool(t, url)), new PostgresTaskStorage(openTestPool(t, url))]
    const admin = openTestPool(t, url)
    const { hooks } = recording()
    const [a, b] = [await one.create(newTask(), null, hooks), await one.create(newTask(), null, hooks)]
    const id = taskId()
    // The first replica's transaction binds the task_id, then waits (its trigger's insert into task_counts) before
    // its commit; the second checks while the binding is not committed, so only the unique index can stop it.
    const blocker = await admin.connect()
    await blocker.query('BEGIN')
    await blocker.query('LOCK TABLE task_counts IN SHARE MODE')
    const first = apply(one, hooks, a.seq, id, processing)
    await lockWaiters(admin, 1)
    const second = apply(two, hooks, b.seq, id, processing, 'poll')
    await lockWaiters(admin, 2)
    await blocker.query('COMMIT')
    blocker.release()
    t.match(await first, { ok: true, task: { task_id: id, status: 'processing' } })
    t.same(await second, { ok: false, reason: 'task_id_taken', task: b })
    t.match((await two.queries.eventsOf(b.seq)).at(-1), { source: 'poll', outcome: 'refused', detail: JSON.stringify({ task_id: id, reason: 'task_id_taken' }) })
    t.equal((await two.queries.bySeq(b.seq))!.task_id, null)
  })

  t.test('postgres: two replicas changing statuses in opposite directions at once do not deadlock, and the counts stay exact', async (t) => {
    const url = await pg.freshUrl()
    const [one, two] = [openTestPool(t, url), openTestPool(t, url)]
    const storage = new PostgresTaskStorage(one)
    const { hooks } = recording()
    const seqs: number[] = []
    for (const status of ['processing', 'submitting', 'submitting', 'processing'] as const) {
      const task = await storage.create(newTask(), null, hooks)
      if (status === 'processing') await apply(storage, hooks, task.seq, taskId(), processing)
      seqs.push(task.seq)
    }
    const [x, y, z, w] = seqs as [number, number, number, number]
    const setStatus = (client: { query: (text: string, values: unknown[]) => Promise<unknown> }, seq: number, status: string) =>
      client.query('UPDATE tasks SET status = $2 WHERE seq = $1', [seq, status])
    const [first, second] = [await one.connect(), await two.connect()]
    t.teardown(() => { first.release(); second.release() })
    await first.query('BEGIN')
    await second.query('BEGIN')
    // One counted row per status (migration 001) took these locks in opposite orders and deadlocked here: the first
    // holds processing and success and needs submitting; the second holds submitting and needs processing.
    await setStatus(first, x, 'success')
    const secondsFirst = setStatus(second, z, 'processing')
    await Promise.race([secondsFirst, sleep(200)])
    await setStatus(first, y, 'processing')
    await secondsFirst
    await setStatus(second, w, 'success')
    await Promise.all([first.query('COMMIT', []), second.query('COMMIT', [])])
    const real = (await one.query<{ status: string, n: number }>('SELECT status, count(*) AS n FROM tasks GROUP BY status ORDER BY status')).rows
    t.same((await storage.queries.countsByStatus()).filter((row) => row.n > 0), real)
    t.same(real, [{ status: 'processing', n: 2 }, { status: 'success', n: 2 }])
  })

  t.test('postgres: counts stay exact while two replicas change statuses and fold the deltas at once', async (t) => {
    const url = await pg.freshUrl()
    const pools = [openTestPool(t, url), openTestPool(t, url)]
    const [one, two] = pools.map((pool) => new PostgresTaskStorage(pool)) as [PostgresTaskStorage, PostgresTaskStorage]
    const { hooks } = recording()
    const tasks = await Promise.all(Array.from({ length: 40 }, async () => (await one.create(newTask(), null, hooks)).seq))
    const ids = new Map(tasks.map((seq) => [seq, taskId()]))
    // Each replica walks half the tasks forward in groups of two, the halves interleaved and in opposite orders, while
    // both fold (repository.foldCounts) between groups.
    const repo = new PostgresTasksRepository()
    const walk = async (storage: PostgresTaskStorage, pool: pgPool, mine: number[]) => {
      for (const update of [processing, success]) {
        for (let i = 0; i < mine.length; i += 2) {
          const group = mine.slice(i, i + 2).map((seq) => [seq, ids.get(seq)!, update, 'callback'] as UpdateArgs)
          const settled = await storage.applyUpdates(group, hooks)
          t.ok(settled.every((item) => 'result' in item), 'no group failed (no 40P01)')
          await repo.foldCounts(pool)
        }
      }
    }
    const evens = tasks.filter((_, i) => i % 2 === 0)
    await Promise.all([walk(one, pools[0]!, evens), walk(two, pools[1]!, tasks.filter((_, i) => i % 2 === 1).reverse())])
    t.same((await one.queries.countsByStatus()).filter((row) => row.n > 0), [{ status: 'success', n: 40 }])
    await repo.foldCounts(pools[0]!)
    t.same((await pools[0]!.query('SELECT status, n FROM task_counts ORDER BY status')).rows, [
      { status: 'failed', n: 0 }, { status: 'processing', n: 0 }, { status: 'queued', n: 0 }, { status: 'submitting', n: 0 }, { status: 'success', n: 40 }
    ], 'folded: one row per status')
  })

  t.test('postgres: a count folds the deltas once there are many, and a fold waits for no other', async (t) => {
    const url = await pg.freshUrl()
    const pool = openTestPool(t, url)
    const storage = new PostgresTaskStorage(pool)
    const { hooks } = recording()
    const rowsNow = async () => (await pool.query<{ n: number }>('SELECT count(*) AS n FROM task_counts')).rows[0]!.n
    // Deltas that sum to nothing, as many as the threshold (a change of status appends two): the create passes it.
    for (let i = 0; i < FOLD_COUNTS_AFTER_ROWS / 2; i++) await pool.query("INSERT INTO task_counts (status, n) VALUES ('queued', 1), ('queued', -1)")
    await storage.create(newTask(), null, hooks)
    t.ok(await rowsNow() > FOLD_COUNTS_AFTER_ROWS)
    const counts = await storage.queries.countsByStatus()
    t.same(counts.filter((row) => row.n > 0), [{ status: 'submitting', n: 1 }])
    t.equal(await rowsNow(), 5, 'the count folded the deltas into one row per status')
    t.same(await storage.queries.countsByStatus(), counts, 'the same counts after the fold')

    // Another replica folding (it holds the lock): this fold deletes nothing and does not wait.
    await storage.create(newTask(), null, hooks)
    const other = await openTestPool(t, url).connect()
    t.teardown(() => other.release())
    await other.query('BEGIN')
    await other.query('SELECT pg_advisory_xact_lock($1::bigint)', [FOLD_COUNTS_LOCK_KEY.toString()])
    await new PostgresTasksRepository().foldCounts(pool)
    t.equal(await rowsNow(), 6, 'left for the replica that holds the lock')
    await other.query('COMMIT')
    await new PostgresTasksRepository().foldCounts(pool)
    t.equal(await rowsNow(), 5)
    t.same((await storage.queries.countsByStatus()).filter((row) => row.n > 0), [{ status: 'submitting', n: 2 }])
  })
}
