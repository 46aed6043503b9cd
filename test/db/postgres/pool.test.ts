// The PostgreSQL pool: which URLs select it, the limits it sets on a real server, BIGINTs as numbers, idle failures.
import t from 'tap'
import { APPLICATION_NAME, isPostgresUrl, openPool } from '../../../src/db/postgres/pool.js'
import { havePostgres, openTestPool, startPostgres } from '../../postgres-cluster.js'

// The cluster is started before any test is queued: tap would end the file while a queued test ran alone.
if (havePostgres(t, 'the PostgreSQL pool')) {
  const cluster = await startPostgres(t)

  t.test('sessions carry our application name and the statement timeout', async (t) => {
    const pool = openTestPool(t, await cluster.freshDatabase(), { statementTimeoutMs: 150 })
    const { rows } = await pool.query('SELECT application_name, current_setting(\'statement_timeout\') AS timeout FROM pg_stat_activity WHERE pid = pg_backend_pid()')
    t.same(rows, [{ application_name: APPLICATION_NAME, timeout: '150ms' }])
    await t.rejects(pool.query('SELECT pg_sleep(5)'), { code: '57014' }, 'a stuck statement is cancelled (query_canceled)')
  })

  t.test('a full pool makes the next caller wait at most the connection timeout', async (t) => {
    const pool = openTestPool(t, await cluster.freshDatabase(), { max: 2, connectionTimeoutMs: 200 })
    const held = await Promise.all([pool.connect(), pool.connect()])
    t.teardown(() => held.forEach((client) => client.release()))
    await t.rejects(pool.connect(), /timeout exceeded when trying to connect/)
    t.equal(pool.totalCount, 2)
  })

  t.test('BIGINTs are read as numbers, and one too large for a number fails instead of being rounded', async (t) => {
    const pool = openTestPool(t, await cluster.freshDatabase(), { max: 1 })
    t.same((await pool.query('SELECT 42::bigint AS n, count(*) AS c FROM generate_series(1, 3)')).rows, [{ n: 42, c: 3 }])
    t.same((await pool.query('SELECT 9007199254740991::bigint AS n')).rows, [{ n: Number.MAX_SAFE_INTEGER }])
    await t.rejects(pool.query('SELECT 9007199254740993::bigint AS n'), { name: 'RangeError', message: /BIGINT 9007199254740993 does not fit/ })
    t.same((await pool.query('SELECT 1::bigint AS n')).rows, [{ n: 1 }], 'the connection still serves the next query')
    t.same((await pool.query('SELECT 7::integer AS i, \'7\'::text AS s')).rows, [{ i: 7, s: '7' }], 'other types as node-postgres reads them')
  })

  t.test('an idle connection that the server drops is reported, not thrown out of the process', async (t) => {
    let report: (err: Error) => void = () => {}
    const reported = new Promise<Error>((resolve) => { report = resolve })
    const pool = openTestPool(t, await cluster.freshDatabase(), { max: 1, onError: (err) => report(err) })
    const { rows: [{ pid }] } = await pool.query('SELECT pg_backend_pid() AS pid')
    const admin = openTestPool(t, cluster.url)
    t.same((await admin.query('SELECT pg_terminate_backend($1) AS done', [pid])).rows, [{ done: true }])
    t.match((await reported).message, /terminat/)
    t.same((await pool.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'the pool opens a new connection')
  })
}

t.test('postgres:// and postgresql:// URLs select PostgreSQL; paths and other schemes do not', async (t) => {
  for (const url of ['postgres://u:p@db:5432/s2v', 'postgresql://db/s2v?sslmode=require', 'POSTGRES://db/s2v']) t.ok(isPostgresUrl(url), url)
  for (const url of ['./data/s2v.db', '/var/lib/s2v/s2v.db', 'sqlite://s2v.db', 'file:postgres.db', 'postgres:/db', '']) t.notOk(isPostgresUrl(url), url)
  t.throws(() => openPool('./data/s2v.db', { onError: () => {} }), /starts with postgres:\/\/ or postgresql:\/\//)
})
