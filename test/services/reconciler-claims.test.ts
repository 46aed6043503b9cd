// Several reconcilers on one database (replicas): each due task is polled by one of them, and the tasks a replica
// claimed and never polled (it died) are polled by another once the claim has run out. On SQLite and PostgreSQL.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { PostgresTaskStorage } from '../../src/db/postgres/task-storage.js'
import type { ProviderTaskState, VideoProvider } from '../../src/providers/provider.js'
import { Reconciler } from '../../src/services/reconciler.js'
import { TaskStore } from '../../src/services/task-store.js'
import { seedTask, standaloneReconciler, taskId } from '../helper.js'
import { openTestPool } from '../postgres-cluster.js'
import { postgres, sqlite } from '../db/task-storage-engines.js'

// Started before any test is queued (see startPostgres).
const pg = await postgres(t)

// The provider clients' timeout the reconcilers are told of (what their claims' lease follows from).
const REQUEST_TIMEOUT_MS = 1000
// The lease of the claim a replica makes before it dies, in the second test.
const CLAIM_MS = 60_000
// The reconcilers' TASK_DEADLINE_MS (standaloneReconciler's).
const DEADLINE_MS = 7_200_000
// Long enough for both passes to be under way at once: each poll waits this long for the provider's answer.
const ANSWER_DELAY_MS = 20

/** A provider that answers every query "still processing" after a moment, recording which task was asked about. */
function slowProvider (): { provider: VideoProvider, asked: string[] } {
  const asked: string[] = []
  const answer: ProviderTaskState = { providerStatus: 'Processing', fileId: null, error: null, video: null, traceId: null }
  return {
    asked,
    provider: {
      name: 'minimax',
      pushesStatus: true,
      submit: async () => { throw new Error('not used') },
      query: async (id) => {
        asked.push(id)
        await sleep(ANSWER_DELAY_MS)
        return answer
      },
      videoLink: async () => { throw new Error('not used') }
    }
  }
}

/**
 * A replica's reconciler on the store. Its late-verdict polls come after the passes' clock (two hours ahead in the
 * deadline test), so a task one replica gave up on is not due again for the other in the same pass.
 */
function reconcilerOn (store: TaskStore, provider: VideoProvider): Reconciler {
  return standaloneReconciler(store, provider, {
    afterNewsMs: 60_000, backoffMs: 60_000, backoffMaxMs: 60_000, providerRequestTimeoutMs: REQUEST_TIMEOUT_MS, latePollMs: 3 * DEADLINE_MS
  })
}

/** Five tasks due for a poll now; their provider task ids. */
async function dueTasks (store: TaskStore): Promise<Array<{ seq: number, taskId: string }>> {
  const tasks = []
  for (let i = 0; i < 5; i++) {
    const id = taskId()
    const { seq } = await seedTask(store, { task_id: id })
    await store.pollAt(seq, new Date(Date.now() - 1000).toISOString())
    tasks.push({ seq, taskId: id })
  }
  return tasks
}

/** Two replicas' task modules on one database: one process's store twice on SQLite, two pools on PostgreSQL. */
const setups = [
  { name: 'sqlite', stores: async (t: Test) => { const store = new TaskStore(await sqlite.open(t)); return [store, store] as const } },
  ...(pg
    ? [{
        name: 'postgres',
        stores: async (t: Test) => {
          const url = await pg.freshUrl()
          return [new TaskStore(new PostgresTaskStorage(openTestPool(t, url))), new TaskStore(new PostgresTaskStorage(openTestPool(t, url)))] as const
        }
      }]
    : [])
]

for (const setup of setups) {
  t.test(`${setup.name}: two reconcilers passing at once poll each due task once`, async (t) => {
    const [one, two] = await setup.stores(t)
    const { provider, asked } = slowProvider()
    const tasks = await dueTasks(one)
    await Promise.all([reconcilerOn(one, provider).runOnce(), reconcilerOn(two, provider).runOnce()])
    t.same([...asked].sort(), tasks.map((task) => task.taskId).sort(), 'every due task asked about once, by one replica or the other')
    for (const task of tasks) {
      const row = (await one.queries.bySeq(task.seq))!
      t.match(row, { provider_status: 'Processing' }, 'the answer was applied')
      t.equal(Date.parse(row.next_poll_at!), Date.parse(row.last_news_at!) + 60_000, 'and set the schedule (the policy\'s minute after news), not the claim')
    }
  })

  t.test(`${setup.name}: two reconcilers passing at once past the deadline make each task's last poll once and give up on it once`, async (t) => {
    const [one, two] = await setup.stores(t)
    const [first, second] = [slowProvider(), slowProvider()]
    const tasks = await dueTasks(one)
    // One whose next poll is far off, beyond the deadline: the sweep claims it; the others are due polls as well.
    await one.pollAt(tasks[0]!.seq, new Date(Date.now() + 10 * DEADLINE_MS).toISOString())
    const afterDeadline = Date.now() + DEADLINE_MS + 1000
    await Promise.all([reconcilerOn(one, first.provider).runOnce(afterDeadline), reconcilerOn(two, second.provider).runOnce(afterDeadline)])
    t.same(first.asked.filter((id) => second.asked.includes(id)), [], 'no task asked about by both replicas')
    t.same([...new Set([...first.asked, ...second.asked])].sort(), tasks.map((task) => task.taskId).sort(), 'every task asked about')
    for (const task of tasks) {
      t.match(await one.queries.bySeq(task.seq), { status: 'failed', error_code: 'timeout' })
      const timeouts = (await one.queries.eventsOf(task.seq)).filter((event) => event.source === 'timeout')
      t.equal(timeouts.length, 1, 'one give-up recorded, by one replica')
    }
  })

  t.test(`${setup.name}: what a replica claimed and never polled is polled by another once the claim has run out`, async (t) => {
    const [one, two] = await setup.stores(t)
    const { provider, asked } = slowProvider()
    const tasks = await dueTasks(one)
    // The first replica claims as its pass would, and dies before polling.
    t.equal((await one.claimDuePolls('minimax', new Date().toISOString(), 50, CLAIM_MS)).length, tasks.length)
    const survivor = reconcilerOn(two, provider)
    await survivor.runOnce()
    t.same(asked, [], 'while the claim holds, the other replica leaves the tasks alone')
    await survivor.runOnce(Date.now() + CLAIM_MS + 1000)
    t.same([...asked].sort(), tasks.map((task) => task.taskId).sort(), 'after it, each is polled once')
  })
}
