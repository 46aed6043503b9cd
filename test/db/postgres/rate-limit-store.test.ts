// The per-caller rate limits on PostgreSQL: two replicas (two minimal apps, each with its own pool, the shared-limits
// plugin and @fastify/rate-limit as app.ts registers them) on one database together allow exactly a route's limit;
// windows start over and are swept; a database that is down lets requests through uncounted, with a warning.
import rateLimit from '@fastify/rate-limit'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type pg from 'pg'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { migratePostgres } from '../../../src/db/postgres/migrate.js'
import { postgresRateLimitStore, sweepRateLimits } from '../../../src/db/postgres/rate-limit-store.js'
import { PostgresLimits } from '../../../src/db/postgres/shared-limits.js'
import sharedLimits, { rateLimitOptions } from '../../../src/plugins/shared-limits.js'
import { freePort, LogCapture } from '../../helper.js'
import { havePostgres, openTestPool, startPostgres } from '../../postgres-cluster.js'

const LIMIT = 5
// Short enough to watch it end, long enough that a busy machine sends both requests within it.
const SHORT_WINDOW_MS = 400

/** A replica: the engine as the database plugin decorates it, then what app.ts registers, and three limited routes. */
async function replica (t: Test, pool: pg.Pool, logs: LogCapture = new LogCapture()) {
  const app = Fastify({ loggerInstance: logs.logger })
  t.teardown(() => app.close())
  await app.register(fp(async (app) => { app.decorate('engine', { kind: 'postgres', pool }) }, { name: 'database' }))
  await app.register(sharedLimits)
  await app.register(rateLimit, rateLimitOptions(app.rateLimitStore))
  const keyGenerator = (request: FastifyRequest) => String(request.headers['x-caller'])
  app.get('/limited', { config: { rateLimit: { max: LIMIT, timeWindow: 60_000, keyGenerator } } }, async () => ({ ok: true }))
  app.get('/other', { config: { rateLimit: { max: LIMIT, timeWindow: 60_000, keyGenerator } } }, async () => ({ ok: true }))
  app.get('/short', { config: { rateLimit: { max: 1, timeWindow: SHORT_WINDOW_MS, keyGenerator } } }, async () => ({ ok: true }))
  await app.ready()
  return app
}

const get = async (app: Pick<FastifyInstance, 'inject'>, url: string, caller: string) => await app.inject({ url, headers: { 'x-caller': caller } })

if (havePostgres(t, 'the rate-limit store on PostgreSQL')) {
  const cluster = await startPostgres(t)
  const database = async (t: Test): Promise<string> => {
    const url = await cluster.freshDatabase()
    await migratePostgres(openTestPool(t, url, { max: 1 }))
    return url
  }

  t.test('two replicas on one database together allow exactly the limit, per caller and per route', async (t) => {
    const url = await database(t)
    const apps = [await replica(t, openTestPool(t, url)), await replica(t, openTestPool(t, url))]
    t.ok(apps[0]!.sharedLimits instanceof PostgresLimits, 'the plugin chose the database for the provider limits too')
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => get(apps[i % 2]!, '/limited', 'alice')))
    const codes = answers.map((answer) => answer.statusCode)
    t.equal(codes.filter((code) => code === 200).length, LIMIT, `12 requests, 6 to each replica, at once: ${LIMIT} let through (${codes.join(' ')})`)
    t.equal(codes.filter((code) => code === 429).length, 12 - LIMIT, 'the rest refused')
    const refused = answers.find((answer) => answer.statusCode === 429)!
    const retryAfter = Number(refused.headers['retry-after'])
    t.ok(retryAfter > 50 && retryAfter <= 60, `Retry-After is what is left of the shared window (${retryAfter} s)`)
    t.same(answers.filter((answer) => answer.statusCode === 200).map((answer) => Number(answer.headers['x-ratelimit-remaining'])).sort(), [0, 1, 2, 3, 4],
      'each allowed request saw the count of both replicas')
    t.equal((await get(apps[1]!, '/limited', 'bob')).statusCode, 200, 'another caller has a count of its own')
    t.equal((await get(apps[0]!, '/other', 'alice')).statusCode, 200, 'and so has another route')
  })

  t.test('a window that ended starts over on any replica, and the sweep deletes it', async (t) => {
    const url = await database(t)
    const pool = openTestPool(t, url)
    const apps = [await replica(t, pool), await replica(t, openTestPool(t, url))]
    t.equal((await get(apps[0]!, '/short', 'carol')).statusCode, 200)
    t.equal((await get(apps[1]!, '/short', 'carol')).statusCode, 429, 'one a window, whichever replica is asked')
    t.equal((await get(apps[0]!, '/limited', 'carol')).statusCode, 200, 'a window that lasts a minute')
    await sleep(SHORT_WINDOW_MS + 50)
    t.equal((await get(apps[1]!, '/short', 'carol')).statusCode, 200, 'a new window')
    await sleep(SHORT_WINDOW_MS + 50)
    t.equal(await sweepRateLimits(pool), 1, 'the ended window is deleted')
    const { rows } = await pool.query<{ key: string }>('SELECT key FROM rate_limit_hits')
    t.same(rows.map((row) => row.key), ['GET/limited-carol'], 'the running one is kept')
    t.equal(await sweepRateLimits(pool), 0)
  })

  t.test('while the database is down, requests go through uncounted and the log says so (at most a line a second)', async (t) => {
    // Nothing listens on this port: every connection is refused, as when the server is down.
    const down = openTestPool(t, `postgres://postgres@127.0.0.1:${await freePort()}/down`, { connectionTimeoutMs: 1000 })
    const logs = new LogCapture()
    const app = await replica(t, down, logs)
    for (let i = 0; i < 3; i++) t.equal((await get(app, '/short', 'dave')).statusCode, 200, `request ${i + 1} let through`)
    const warnings = logs.lines.filter((line) => line.msg === 'could not count a request against its rate limit (PostgreSQL); let through uncounted')
    t.equal(warnings.length, 1, 'one warning for the three')
    t.equal(warnings[0]!.level, 40)
  })

  t.test('options the store cannot honour are refused at registration', async (t) => {
    const Store = postgresRateLimitStore({ pool: openTestPool(t, await database(t)), onError: () => {} })
    t.throws(() => new Store({ continueExceeding: true } as never), /continueExceeding and exponentialBackoff are not supported/)
    t.throws(() => new Store({}).child({ exponentialBackoff: true, routeInfo: { method: 'GET', url: '/x' } } as never), /not supported/)
  })
}
