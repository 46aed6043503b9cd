// The app on PostgreSQL (DATABASE_URL): it starts, migrates and serves; when the server goes away, challenges are still
// answered and everything that needs the database answers 503 database_unavailable, never a 500.
import t from 'tap'
import { build, seedTask, taskId } from '../helper.js'
import { havePostgres, startPostgres } from '../postgres-cluster.js'

// Started before any test is queued (see startPostgres); this file stops its cluster itself.
const cluster = havePostgres(t, 'the app on PostgreSQL') ? await startPostgres(t) : null

t.test('on PostgreSQL the app serves, and a lost server gives challenges on and 503 database_unavailable', { skip: cluster ? false : 'no PostgreSQL' }, async (t) => {
  const app = await build(t, { DATABASE_URL: await cluster!.freshDatabase() })
  t.equal(app.engine.kind, 'postgres')
  t.equal((await app.inject('/readyz')).statusCode, 200)
  const { id, token } = await seedTask(app.taskStore)
  const provided = taskId()
  const push = await app.inject({ method: 'POST', url: `/get_callback/${token}`, payload: { task_id: provided, status: 'processing' } })
  t.equal(push.statusCode, 200, 'a push is taken')
  t.match((await app.inject(`/v1/tasks/${id}`)).json(), { id, task_id: provided, status: 'processing' }, 'and read back')

  await cluster!.stop()
  const challenge = await app.inject({ method: 'POST', url: '/get_callback', payload: { challenge: 'still-here' } })
  t.same([challenge.statusCode, challenge.json()], [200, { challenge: 'still-here' }], 'a challenge touches no database')
  const ready = await app.inject('/readyz')
  t.same([ready.statusCode, ready.json().status], [503, 'unavailable'])
  for (const [what, request] of [
    ['a lookup', { method: 'GET', url: `/v1/tasks/${id}` }],
    ['a push', { method: 'POST', url: `/get_callback/${token}`, payload: { task_id: provided, status: 'success', file_id: '123' } }]
  ] as const) {
    const res = await app.inject(request)
    t.equal(res.statusCode, 503, what)
    t.match(res.json(), { code: 'database_unavailable' }, `${what}: the code says so`)
    t.equal(res.headers['retry-after'], '5', `${what}: and when to try again`)
  }
})
