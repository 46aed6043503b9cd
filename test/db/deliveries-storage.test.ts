// The notification outbox and its deliveries, the same cases on SQLite and PostgreSQL: messages written (and rolled
// back) with the status change, in order per task and URL, gone URLs, claims and their leases, outcomes, replays,
// listings and who sees them; on PostgreSQL also two replicas claiming at once.
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import type { DeliveryRow } from '../../src/db/deliveries-repository.js'
import type { AttemptOutcome, DeliveriesStorage } from '../../src/services/notifications/deliveries-storage.js'
import { NotificationOutbox } from '../../src/services/notifications/outbox.js'
import type { StatusUpdate } from '../../src/services/task-state.js'
import type { ChangeHooks, TaskStorage } from '../../src/services/task-storage.js'
import { TaskStore } from '../../src/services/task-store.js'
import type { VideoLinkSigner } from '../../src/services/task-view.js'
import { AppError } from '../../src/errors.js'
import { rejectionOf, seedTask, taskId } from '../helper.js'
import { postgres, sqlite, type Engine, type Stores } from './task-storage-engines.js'

// Started before any test is queued (see startPostgres).
const pg = await postgres(t)
const engines: Engine[] = pg ? [sqlite, pg] : [sqlite]

const OWN_URL = 'https://hooks.example.com/own'
const GLOBAL_URL = 'https://ops.example.com/all'
// As the worker's: far longer than any case takes, so only a claim made "after" it (a later now) sees it run out.
const LEASE_MS = 45_000
const ADMIN = { caller: 'admin', isAdmin: true }

const failed: StatusUpdate = { status: 'failed', providerStatus: 'Fail', error: { code: '1026', message: 'sensitive content' } }
// No case finishes a task with a video: a message that would carry a link is a mistake here.
const noVideo: VideoLinkSigner = () => { throw new Error('no task in these cases has a video') }

type Setup = Stores & { store: TaskStore, outbox: NotificationOutbox }

/** Both storages on one fresh database, the outbox writing every status change's messages, as plugins/task-effects.ts wires it. */
function wire ({ tasks, deliveries }: Stores): Setup {
  const store = new TaskStore(tasks)
  const outbox = new NotificationOutbox(deliveries, { globalUrl: GLOBAL_URL, signVideoLink: noVideo })
  store.onStatusChange((change) => outbox.messagesFor(change))
  return { tasks, deliveries, store, outbox }
}

/** A task of `caller`'s that went processing (one status change: a message to its notify_url and one to NOTIFY_URL). */
async function processingTask (store: TaskStore, caller = 'anonymous'): Promise<{ seq: number, id: string, taskId: string }> {
  const provided = taskId()
  const { seq, id } = await seedTask(store, { task_id: provided, notify_url: OWN_URL, caller })
  return { seq, id, taskId: provided }
}

const ofTask = async (deliveries: DeliveriesStorage, seq: number): Promise<DeliveryRow[]> =>
  (await deliveries.list({ taskSeq: seq, limit: 100 })).reverse()

const at = (offsetMs = 0): string => new Date(Date.now() + offsetMs).toISOString()

/** Records one attempt of a claimed delivery with its outcome; the test fails if the delivery was gone. */
async function record (t: Test, deliveries: DeliveriesStorage, row: DeliveryRow, outcome: AttemptOutcome, statusCode: number | null = 200): Promise<void> {
  const attempt = { delivery_seq: row.seq, at: at(), status_code: statusCode, latency_ms: 12, error: statusCode === 200 ? null : `HTTP ${statusCode}` }
  t.ok(await deliveries.recordAttempt(row, row.round_attempts + 1, attempt, outcome), `the attempt of ${row.status} to ${row.url} is recorded`)
}

const urlOf = (url: string) => (row: DeliveryRow) => row.url === url

for (const engine of engines) {
  t.test(engine.name, async (t) => {
    t.test('a status change writes one message per URL with it, due at once, its body frozen', async (t) => {
      const { store, deliveries } = wire(await engine.openStores(t))
      const { seq } = await processingTask(store, 'team-a')
      const rows = await ofTask(deliveries, seq)
      t.same(rows.map((row) => row.url).sort(), [GLOBAL_URL, OWN_URL].sort())
      for (const row of rows) {
        t.match(row, { state: 'pending', status: 'processing', caller: 'team-a', round_attempts: 0, dead_reason: null, next_attempt_at: row.created_at })
        t.match(JSON.parse(row.payload), { status: 'processing' })
        t.match(row.id, /^msg_/)
      }
      t.not(rows[0]!.id, rows[1]!.id, 'each message its own webhook-id')
    })

    t.test('a group that fails as a whole keeps none of its messages: they roll back with its changes', async (t) => {
      const { tasks, store, outbox, deliveries } = wire(await engine.openStores(t))
      const a = await seedTask(store, { notify_url: OWN_URL })
      const b = await seedTask(store, { notify_url: OWN_URL })
      // b's writer fails after a's messages were inserted in the group's transaction: the group rolls back, then
      // each update goes alone and only b's fails. Messages written outside the transaction would stay: four for a.
      const hooks: ChangeHooks = {
        scheduler: () => null,
        writers: [(change) => {
          if (change.task.seq === b.seq) throw new Error('the writer failed')
          return outbox.messagesFor(change)
        }]
      }
      const processing: StatusUpdate = { status: 'processing', providerStatus: 'Queueing' }
      const settled = await runGroup(tasks, hooks, [[a.seq, taskId(), processing], [b.seq, taskId(), processing]])
      t.ok('result' in settled[0]!, 'a applied alone')
      t.ok('error' in settled[1]!, 'b failed alone')
      t.equal((await ofTask(deliveries, a.seq)).length, 2, 'a\'s messages once, from its own transaction')
      t.equal((await ofTask(deliveries, b.seq)).length, 0, 'b\'s rolled back with its change')
      t.equal((await tasks.queries.bySeq(b.seq))!.status, 'submitting')
    })

    t.test('in order: a later message waits behind a pending one to the same URL, and goes once that one is delivered or dead', async (t) => {
      const { store, deliveries } = wire(await engine.openStores(t))
      const task = await processingTask(store)
      await store.applyUpdate(task.seq, task.taskId, failed, 'callback')
      const rows = await ofTask(deliveries, task.seq)
      t.same(rows.map((row) => [row.status, row.next_attempt_at === null]), [['processing', false], ['processing', false], ['failed', true], ['failed', true]],
        'the failed messages are queued')
      const first = await deliveries.claimDue(at(), 10, LEASE_MS)
      t.same(first.map((row) => row.status), ['processing', 'processing'], 'only the first of each URL is claimed')

      await record(t, deliveries, first.find(urlOf(OWN_URL))!, { kind: 'delivered' })
      const own = await deliveries.claimDue(at(), 10, LEASE_MS)
      t.same(own.map((row) => [row.status, row.url]), [['failed', OWN_URL]], 'delivered: the next one to the URL is due')

      await record(t, deliveries, first.find(urlOf(GLOBAL_URL))!, { kind: 'dead', reason: 'attempts_exhausted' }, 500)
      const global = await deliveries.claimDue(at(), 10, LEASE_MS)
      t.same(global.map((row) => [row.status, row.url]), [['failed', GLOBAL_URL]], 'dead: the next one goes too')
    })

    t.test('a URL that answered 410 gets nothing more: its pending messages die, new ones are written dead, a replay allows it again', async (t) => {
      const { store, deliveries, outbox } = wire(await engine.openStores(t))
      const task = await processingTask(store)
      const other = await processingTask(store)
      const claimed = await deliveries.claimDue(at(), 10, LEASE_MS)
      const gone = claimed.find((row) => row.task_seq === task.seq && row.url === OWN_URL)!
      await record(t, deliveries, gone, { kind: 'gone' }, 410)
      t.ok(await deliveries.isGone(OWN_URL))
      t.match(await deliveries.byId(gone.id), { state: 'failed', dead_reason: 'gone', next_attempt_at: null })
      const otherOwn = (await ofTask(deliveries, other.seq)).find(urlOf(OWN_URL))!
      t.match(otherOwn, { state: 'failed', dead_reason: 'url_gone' }, 'another task\'s pending message to it is killed')

      await store.applyUpdate(task.seq, task.taskId, failed, 'callback')
      const written = (await ofTask(deliveries, task.seq)).filter((row) => row.status === 'failed')
      t.match(written.find(urlOf(OWN_URL)), { state: 'failed', dead_reason: 'url_gone', next_attempt_at: null }, 'written dead')
      t.match(written.find(urlOf(GLOBAL_URL)), { state: 'pending', dead_reason: null }, 'other URLs unaffected')

      const replayed = await outbox.retry(ADMIN, otherOwn.id)
      t.match(replayed, { state: 'pending', round_attempts: 0, dead_reason: null })
      t.notOk(await deliveries.isGone(OWN_URL), 'the replay says the URL is back')
    })

    t.test('a claimed delivery is nobody else\'s until its lease ends; an abandoned claim is given back at once', async (t) => {
      const { store, deliveries } = wire(await engine.openStores(t))
      await processingTask(store)
      const now = at()
      const claimed = await deliveries.claimDue(now, 10, LEASE_MS)
      t.equal(claimed.length, 2)
      const leaseEnd = new Date(Date.parse(now) + LEASE_MS).toISOString()
      t.same(claimed.map((row) => row.next_attempt_at), [leaseEnd, leaseEnd], 'the rows as claimed')
      t.same(await deliveries.claimDue(now, 10, LEASE_MS), [], 'a second claim gets none')
      t.equal(await deliveries.nextDueAt(), leaseEnd, 'they are due again when the lease ends')
      t.same(await deliveries.claimDue(new Date(Date.parse(leaseEnd) - 1).toISOString(), 10, LEASE_MS), [], 'not before')
      const after = await deliveries.claimDue(leaseEnd, 10, LEASE_MS)
      t.same(after.map((row) => row.seq).sort(), claimed.map((row) => row.seq).sort(), 'a claimer that died gives them back at the lease\'s end')

      await deliveries.releaseClaim(after[0]!, now)
      t.same((await deliveries.claimDue(now, 10, LEASE_MS)).map((row) => row.seq), [after[0]!.seq], 'released: claimable now')
      // A release of a claim that is not the current one (another claimer's since) moves nothing.
      await deliveries.releaseClaim(after[0]!, now)
      t.same(await deliveries.claimDue(now, 10, LEASE_MS), [])
    })

    t.test('outcomes: a retry keeps it pending on its new schedule, every attempt is kept, a purged task\'s attempt is not recorded', async (t) => {
      const { store, deliveries } = wire(await engine.openStores(t))
      const task = await processingTask(store)
      const [row] = (await deliveries.claimDue(at(), 10, LEASE_MS)).filter(urlOf(OWN_URL))
      const retryAt = at(60_000)
      await record(t, deliveries, row!, { kind: 'retry', nextAttemptAt: retryAt }, 503)
      t.match(await deliveries.byId(row!.id), { state: 'pending', round_attempts: 1, next_attempt_at: retryAt })
      t.same((await deliveries.claimDue(at(), 10, LEASE_MS)).filter(urlOf(OWN_URL)), [], 'not due before its retry')
      const [again] = (await deliveries.claimDue(retryAt, 10, LEASE_MS)).filter(urlOf(OWN_URL))
      t.equal(again!.round_attempts, 1)
      await record(t, deliveries, again!, { kind: 'delivered' })
      t.match(await deliveries.byId(row!.id), { state: 'delivered', round_attempts: 2, next_attempt_at: null })
      t.same((await deliveries.attemptsOf(row!.seq)).map((attempt) => attempt.status_code), [503, 200])

      const [global] = await deliveries.list({ taskSeq: task.seq, state: 'pending', limit: 10 })
      await store.applyUpdate(task.seq, task.taskId, failed, 'callback')
      await store.purgeFinished(at(60_000), 10)
      const attempt = { delivery_seq: global!.seq, at: at(), status_code: 200, latency_ms: 5, error: null }
      t.equal(await deliveries.recordAttempt(global!, 1, attempt, { kind: 'delivered' }), false, 'the delivery went with its task')
    })

    t.test('replays: one at a time, not while pending, not back in time; a range replays the failed, oldest first, skipping superseded ones', async (t) => {
      const { store, deliveries, outbox } = wire(await engine.openStores(t))
      const since = at(-1000)
      const task = await processingTask(store)
      await store.applyUpdate(task.seq, task.taskId, failed, 'callback')
      const first = await deliveries.claimDue(at(), 10, LEASE_MS)
      const processingOwn = first.find(urlOf(OWN_URL))!
      const processingGlobal = first.find(urlOf(GLOBAL_URL))!
      await record(t, deliveries, processingOwn, { kind: 'dead', reason: 'attempts_exhausted' }, 500)
      await record(t, deliveries, processingGlobal, { kind: 'dead', reason: 'attempts_exhausted' }, 500)
      const second = await deliveries.claimDue(at(), 10, LEASE_MS)
      const failedOwn = second.find(urlOf(OWN_URL))!
      const failedGlobal = second.find(urlOf(GLOBAL_URL))!
      // Delivered, the later message to the own URL supersedes the dead processing one there.
      await record(t, deliveries, failedOwn, { kind: 'delivered' })

      t.match(await rejectionOf(outbox.retry(ADMIN, failedGlobal.id), AppError), { statusCode: 409, code: 'delivery_pending' })
      t.match(await rejectionOf(outbox.retry(ADMIN, processingOwn.id), AppError), { statusCode: 409, code: 'delivery_superseded' })
      t.match(await rejectionOf(outbox.retry({ caller: 'someone-else', isAdmin: false }, processingGlobal.id), AppError), { statusCode: 404 }, 'another caller\'s: missing')

      // Replayed, the dead processing message to NOTIFY_URL is the earliest pending of its pair: due at once.
      const replayed = await outbox.retry(ADMIN, processingGlobal.id)
      t.match(replayed, { state: 'pending', round_attempts: 0, dead_reason: null, id: processingGlobal.id })
      t.same((await deliveries.claimDue(at(), 10, LEASE_MS)).map((row) => row.id), [processingGlobal.id])
      await record(t, deliveries, processingGlobal, { kind: 'dead', reason: 'attempts_exhausted' }, 500)
      await record(t, deliveries, failedGlobal, { kind: 'dead', reason: 'attempts_exhausted' }, 500)

      // Failed now: processing to own (superseded), processing to NOTIFY_URL, failed to NOTIFY_URL.
      t.same(await outbox.retryRange({ caller: 'someone-else', isAdmin: false }, since, at(1000)), { retried: 0, skipped: 0 }, 'a caller replays only its own')
      t.same(await outbox.retryRange(ADMIN, since, at(1000)), { retried: 2, skipped: 1 })
      const after = await ofTask(deliveries, task.seq)
      t.match(after.find((row) => row.id === processingGlobal.id), { state: 'pending', next_attempt_at: String })
      t.match(after.find((row) => row.id === failedGlobal.id), { state: 'pending', next_attempt_at: null }, 'the later one queued behind the earlier')
      t.match(after.find((row) => row.id === processingOwn.id), { state: 'failed' }, 'the superseded one stays')
      t.same(await outbox.retryRange(ADMIN, since, at(1000)), { retried: 0, skipped: 1 }, 'nothing left to replay')
    })

    t.test('listings: newest first, by state, task and page; each caller sees its own tasks\' deliveries, an admin everyone\'s', async (t) => {
      const { store, deliveries, outbox } = wire(await engine.openStores(t))
      const a = await processingTask(store, 'team-a')
      const b = await processingTask(store, 'team-b')
      const [deadOne] = (await deliveries.claimDue(at(), 10, LEASE_MS)).filter((row) => row.task_seq === a.seq && row.url === OWN_URL)
      await record(t, deliveries, deadOne!, { kind: 'dead', reason: 'notify_url_not_allowed' }, null)

      const all = await outbox.listFor(ADMIN, { limit: 10 })
      t.equal(all.length, 4)
      t.same(all.map((row) => row.seq), [...all.map((row) => row.seq)].sort((x, y) => y - x), 'newest first')
      t.same(new Set(all.map((row) => `${row.task_seq} ${row.task_public_id}`)), new Set([`${a.seq} ${a.id}`, `${b.seq} ${b.id}`]), 'each with its task\'s public id')
      const ofA = await outbox.listFor({ caller: 'team-a', isAdmin: false }, { limit: 10 })
      t.same(new Set(ofA.map((row) => row.task_seq)), new Set([a.seq]), 'team-a sees its own only')
      t.same((await outbox.listFor({ caller: 'team-b', isAdmin: false }, { state: 'failed', limit: 10 })), [], 'team-b has no dead letters')
      t.same((await outbox.listFor(ADMIN, { state: 'failed', limit: 10 })).map((row) => row.id), [deadOne!.id], 'the dead-letter list')
      t.same((await outbox.listFor(ADMIN, { taskSeq: b.seq, state: 'pending', limit: 10 })).length, 2)
      const page = await outbox.listFor(ADMIN, { limit: 2 })
      const next = await outbox.listFor(ADMIN, { limit: 2, beforeSeq: page.at(-1)!.seq })
      t.same([...page, ...next].map((row) => row.seq), all.map((row) => row.seq), 'pages in order, none twice')

      t.equal(await outbox.findFor({ caller: 'team-b', isAdmin: false }, deadOne!.id), undefined, 'another caller\'s delivery looks missing')
      t.match(await outbox.findFor({ caller: 'team-a', isAdmin: false }, deadOne!.id), { id: deadOne!.id, dead_reason: 'notify_url_not_allowed' })
      t.equal(await outbox.findFor(ADMIN, 'msg_nothing'), undefined)
    })

    if (engine === pg) {
      t.test('two replicas claiming at once get disjoint deliveries, and between them every one', async (t) => {
        const url = await pg.freshUrl()
        const one = wire(pg.storesOn(t, url))
        const two = pg.storesOn(t, url)
        for (let i = 0; i < 30; i++) await processingTask(one.store)
        const seen = new Map<number, string>()
        for (let round = 0; round < 20; round++) {
          const now = at()
          // Small claims, many rounds: the two statements overlap on the same rows again and again.
          const [mine, theirs] = await Promise.all([one.deliveries.claimDue(now, 7, LEASE_MS), two.deliveries.claimDue(now, 7, LEASE_MS)])
          for (const [who, rows] of [['one', mine], ['two', theirs]] as const) {
            for (const row of rows) {
              if (seen.has(row.seq)) t.fail(`delivery ${row.seq} claimed by ${seen.get(row.seq)} and again by ${who}`)
              seen.set(row.seq, who)
            }
          }
          if (mine.length + theirs.length === 0) break
        }
        t.equal(seen.size, 60, 'every delivery claimed once')
        t.ok([...seen.values()].includes('two'), 'the second replica got some')
      })
    }
  })
}

t.test('only the deliveries repository of each engine holds SQL that writes deliveries, attempts and gone URLs', async (t) => {
  const src = fileURLToPath(new URL('../../src', import.meta.url))
  const files = (readdirSync(src, { recursive: true }) as string[]).filter((file) => file.endsWith('.ts')).map((file) => join(src, file))
  const writers = files
    .filter((file) => /\b(INSERT INTO|UPDATE|DELETE FROM)\s+(notification_deliveries|notification_attempts|notification_gone_urls)\b/.test(readFileSync(file, 'utf8')))
    .map((file) => relative(src, file))
  t.same(writers.sort(), ['db/deliveries-repository.ts', 'db/postgres/deliveries-repository.ts'])
})

type GroupItem = [seq: number, taskId: string, update: StatusUpdate]

function runGroup (tasks: TaskStorage, hooks: ChangeHooks, items: GroupItem[]) {
  return tasks.applyUpdates(items.map(([seq, id, update]) => [seq, id, update, 'callback']), hooks)
}
