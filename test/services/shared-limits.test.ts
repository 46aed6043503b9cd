// The shared limits on both engines (this process's memory, PostgreSQL): the create pace (interval, window, the lease
// of a create whose sender died, refusals) and the poll budget; on PostgreSQL also two replicas (two pools) asking at
// once, which together never get more than one replica would. Real clocks (PostgreSQL's is the server's): the
// windows are short, and every bound is checked with room for a loaded machine.
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { migratePostgres } from '../../src/db/postgres/migrate.js'
import { PostgresLimits } from '../../src/db/postgres/shared-limits.js'
import { CallBudget } from '../../src/services/call-budget.js'
import { SharedPacer, type PacerRules } from '../../src/services/pacing.js'
import { MemoryLimits, type SharedLimits } from '../../src/services/shared-limits.js'
import { havePostgres, openTestPool, startPostgres } from '../postgres-cluster.js'

type LimitsEngine = { name: string, open: (t: Test) => Promise<SharedLimits> }

// Started before any test is queued (see startPostgres).
const cluster = havePostgres(t, 'the shared limits on PostgreSQL') ? await startPostgres(t) : null

/** A fresh migrated database's URL. */
async function freshUrl (t: Test): Promise<string> {
  const url = await cluster!.freshDatabase()
  await migratePostgres(openTestPool(t, url, { max: 1 }))
  return url
}

const memory: LimitsEngine = { name: 'memory', open: async () => new MemoryLimits() }
const postgres: LimitsEngine = { name: 'postgres', open: async (t) => new PostgresLimits(openTestPool(t, await freshUrl(t))) }
const engines = cluster ? [memory, postgres] : [memory]

// A 2 s provider window is 2,250 ms with the pacer's margin.
const WINDOW_MS = 2000
const PACER_WINDOW_MS = 2250
// Slack for a timer that fires late and round trips to the database on a busy 2-core machine.
const SLACK_MS = 400

const rules = (extra: Partial<PacerRules> = {}): PacerRules => ({ rpm: 4, providerWindowMs: WINDOW_MS, leaseMs: 60_000, ...extra })

for (const engine of engines) {
  t.test(`${engine.name}: one create at a time, then the next at least an interval later`, async (t) => {
    const pacer = new SharedPacer(await engine.open(t), 'pacing:minimax', rules())
    t.equal(pacer.intervalMs, PACER_WINDOW_MS / 4)
    t.ok(await pacer.tryTake('a'), 'the first create goes at once')
    t.notOk(await pacer.tryTake('b'), 'nothing else while it is in flight')
    t.equal(await pacer.waitMs(), Infinity)
    await pacer.release('a', true)
    const wait = await pacer.waitMs()
    t.ok(wait > pacer.intervalMs - SLACK_MS && wait <= pacer.intervalMs, `the next one waits for its interval (${wait} ms)`)
    t.notOk(await pacer.tryTake('b'), 'not before')
    await sleep(wait + 10)
    t.ok(await pacer.tryTake('b'), 'and goes once it is over')
  })

  t.test(`${engine.name}: never more than rpm in a window, counted from each answer`, async (t) => {
    const pacer = new SharedPacer(await engine.open(t), 'pacing:minimax', rules({ rpm: 2 }))
    t.ok(await pacer.tryTake('a'))
    await sleep(800) // a slow answer: the window counts this create from here
    await pacer.release('a', true)
    await sleep(await pacer.waitMs() + 10)
    t.ok(await pacer.tryTake('b'), 'the second create of the window')
    await pacer.release('b', true)
    // The interval alone would allow the third 1,125 ms after the second; the window, only 2,250 ms after the first
    // answer (about 1,690 ms after the second).
    const wait = await pacer.waitMs()
    t.ok(wait > pacer.intervalMs + 100, `the third waits for the window to move on (${wait} ms, interval ${pacer.intervalMs} ms)`)
    await sleep(wait + 10)
    t.ok(await pacer.tryTake('c'), 'then it goes')
  })

  t.test(`${engine.name}: a create whose sender died holds the slot only until its lease runs out`, async (t) => {
    const limits = await engine.open(t)
    const pacer = new SharedPacer(limits, 'pacing:minimax', rules({ rpm: 6000, leaseMs: 1000 }))
    t.ok(await pacer.tryTake('killed replica'))
    t.notOk(await pacer.tryTake('survivor'), 'held while the create may still be answered')
    await sleep(1000 + 20)
    t.ok(await pacer.tryTake('survivor'), 'free once the lease ran out: nobody is left to answer for it')
    await pacer.release('killed replica', true)
    t.equal(await pacer.waitMs(), Infinity, 'a late answer of the dead one frees nothing: the slot is the survivor\'s')
    await pacer.release('survivor', true)
    t.ok(await pacer.waitMs() < Infinity, 'its holder frees it')
    t.equal(await new SharedPacer(limits, 'pacing:modellix', rules()).waitMs(), 0, 'each provider has a slot of its own')
  })

  t.test(`${engine.name}: a rate-limit refusal pauses the slot for everyone; an accepted create ends the back-off`, async (t) => {
    const limits = await engine.open(t)
    const pacer = new SharedPacer(limits, 'pacing:minimax', rules({ rpm: 60, providerWindowMs: 60_000 }))
    t.ok(await pacer.tryTake('a'))
    await pacer.release('a', false)
    t.equal(await pacer.refused(5000), 5000, 'the hint wins')
    t.equal(await pacer.refused(null), pacer.intervalMs * 4, 'the second refusal in a row: four intervals')
    const other = new SharedPacer(limits, 'pacing:minimax', rules({ rpm: 60, providerWindowMs: 60_000 }))
    const wait = await other.waitMs()
    t.ok(wait > pacer.intervalMs * 4 - SLACK_MS, `another sender of the same limits sees the pause (${wait} ms)`)
    t.equal(await other.refused(null), pacer.intervalMs * 8, 'and goes on from the same count')
    await other.release('nobody', true)
    t.equal(await pacer.refused(null), pacer.intervalMs * 2, 'an accepted create starts the back-off over')
  })

  t.test(`${engine.name}: the poll budget: never more than its size in a window, calls not made given back`, async (t) => {
    const limits = await engine.open(t)
    const budget = new CallBudget(3, { limits, key: 'poll-budget:minimax', windowMs: WINDOW_MS })
    t.equal(await budget.remaining(), 3)
    t.equal(await budget.take(5), 3, 'five asked, three granted')
    t.notOk(await budget.tryTake())
    t.equal(await budget.remaining(), 0)
    const wait = await budget.waitMs()
    t.ok(wait > WINDOW_MS - SLACK_MS && wait <= WINDOW_MS, `until the window moves on (${wait} ms)`)
    await budget.giveBack(1)
    t.equal(await budget.remaining(), 1, 'one given back')
    t.ok(await budget.tryTake())
    t.equal(await new CallBudget(3, { limits, key: 'poll-budget:modellix', windowMs: WINDOW_MS }).remaining(), 3, 'each provider has a budget of its own')
    t.equal(await budget.remaining(), 0)
    await sleep(WINDOW_MS + 20)
    t.equal(await budget.remaining(), 3, 'a window after the last call, all three are free again')
  })
}

if (cluster) {
  /**
   * Two replicas: two pools on one database, each with its own limits. Each pool has its connections open already,
   * so the askers really are at the database at once (not one after another, each behind a connection's start).
   */
  const replicas = async (t: Test): Promise<[SharedLimits, SharedLimits]> => {
    const url = await freshUrl(t)
    const pools = [openTestPool(t, url), openTestPool(t, url)]
    await Promise.all(pools.flatMap((pool) => Array.from({ length: 5 }, () => pool.query('SELECT pg_sleep(0.05)'))))
    return [new PostgresLimits(pools[0]!), new PostgresLimits(pools[1]!)]
  }

  t.test('postgres: two replicas asking at once share one poll budget, never exceeding it together', async (t) => {
    const [a, b] = await replicas(t)
    const budgets = [a, b].map((limits) => new CallBudget(5, { limits, key: 'poll-budget:minimax' }))
    const granted = await Promise.all(Array.from({ length: 20 }, (_, i) => budgets[i % 2]!.tryTake()))
    t.equal(granted.filter(Boolean).length, 5, '20 asked from both at once: 5 granted in total')
    t.equal(await budgets[0]!.remaining(), 0, 'both see the budget spent')
    t.equal(await budgets[1]!.remaining(), 0)

    const more = [a, b].map((limits) => new CallBudget(5, { limits, key: 'poll-budget:modellix' }))
    const takes = await Promise.all([more[0]!.take(5), more[1]!.take(5), more[0]!.take(5), more[1]!.take(5)])
    t.equal(takes.reduce((sum, n) => sum + n, 0), 5, 'batches of 5 asked from both at once: 5 granted in total')
  })

  t.test('postgres: two replicas racing for one create slot: exactly one gets it', async (t) => {
    const [a, b] = await replicas(t)
    const pacers = [a, b].map((limits) => new SharedPacer(limits, 'pacing:minimax', rules({ rpm: 1000 })))
    // The row exists already (a first create came and went), so only its lock keeps the racers apart.
    t.ok(await pacers[0]!.tryTake('warm-up'))
    await pacers[0]!.release('warm-up', true)
    await sleep(10) // past the 1.25 ms interval
    const taken = await Promise.all(Array.from({ length: 10 }, (_, i) => pacers[i % 2]!.tryTake(`replica-${i % 2}/${i}`)))
    t.equal(taken.filter(Boolean).length, 1)
    t.equal(await pacers[0]!.waitMs(), Infinity, 'the other replica sees the create in flight')
    t.equal(await pacers[1]!.waitMs(), Infinity)
  })
}
