// The shared-limits plugin in the app: on SQLite this process's memory and @fastify/rate-limit's own store; on
// PostgreSQL two apps (two replicas, DATABASE_URL of one database) count a caller's requests, the create slot and the
// poll budget together.
import t from 'tap'
import { PostgresLimits } from '../../src/db/postgres/shared-limits.js'
import { CallBudget } from '../../src/services/call-budget.js'
import { MemoryLimits } from '../../src/services/shared-limits.js'
import { build } from '../helper.js'
import { postgres } from '../db/task-storage-engines.js'

// Started before any test is queued (see startPostgres).
const pg = await postgres(t)

const LIMIT = 4
const env = { API_TOKENS: 'alice:alice-token,bob:bob-token', READ_RATE_LIMIT: String(LIMIT), MINIMAX_API_KEY: 'test-key', MINIMAX_POLL_BUDGET: '3' }
const me = (token: string) => ({ url: '/v1/me', headers: { authorization: `Bearer ${token}` } })

t.test('sqlite: the limits stay in this process, as fast as fields', async (t) => {
  const app = await build(t, env)
  t.ok(app.sharedLimits instanceof MemoryLimits)
  t.equal(app.rateLimitStore, null, '@fastify/rate-limit keeps its own in-memory store')
  const codes = []
  for (let i = 0; i < LIMIT + 1; i++) codes.push((await app.inject(me('alice-token'))).statusCode)
  t.same(codes, [200, 200, 200, 200, 429], 'the route\'s limit holds')
})

t.test('postgres: two replicas count a caller\'s requests, the create slot and the poll budget together', { skip: pg ? false : 'no PostgreSQL' }, async (t) => {
  const url = await pg!.freshUrl()
  const one = await build(t, { ...env, DATABASE_URL: url })
  const two = await build(t, { ...env, DATABASE_URL: url })
  t.ok(one.sharedLimits instanceof PostgresLimits, 'the limits live in the database')
  t.ok(one.rateLimitStore !== null, 'and so do the rate limits')

  const answers = await Promise.all(Array.from({ length: 2 * LIMIT }, (_, i) => (i % 2 === 0 ? one : two).inject(me('alice-token'))))
  const codes = answers.map((answer) => answer.statusCode)
  t.equal(codes.filter((code) => code === 200).length, LIMIT, `${2 * LIMIT} lookups, half to each replica: ${LIMIT} answered (${codes.join(' ')})`)
  t.equal(codes.filter((code) => code === 429).length, LIMIT, 'the rest refused with 429')
  t.equal((await two.inject(me('bob-token'))).statusCode, 200, 'another caller counts apart')

  t.ok(await one.submitQueue.pacer('minimax').tryTake('replica one'), 'one replica starts a create')
  t.equal(await two.submitQueue.pacer('minimax').waitMs(), Infinity, 'the other sees it in flight')

  t.same(await two.reconciler.budgets(), [{ provider: 'minimax', per_minute: 3, used: 0 }])
  await one.reconciler.runOnce() // nothing due: nothing spent
  t.same(await two.reconciler.budgets(), [{ provider: 'minimax', per_minute: 3, used: 0 }], 'a quiet pass spends nothing')
  // Spent through replica one's limits under the reconciler's key for MiniMax: replica two's stats count it.
  t.equal(await new CallBudget(3, { limits: one.sharedLimits, key: 'poll-budget:minimax' }).take(2), 2)
  t.same(await two.reconciler.budgets(), [{ provider: 'minimax', per_minute: 3, used: 2 }], 'one budget for both')
})
