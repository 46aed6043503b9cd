import t from 'tap'
import { TasksRepository } from '../../src/db/tasks-repository.js'
import { build, seedTask, taskId, sqliteDb } from '../helper.js'

t.test('a task is found by our id or MiniMax\'s task_id, with its full history oldest first', async (t) => {
  const app = await build(t)
  const tid = taskId()
  const { id, token } = await seedTask(app.taskStore, { task_id: tid, metadata: { order: 42 } })
  await app.inject({ method: 'POST', url: `/get_callback/${token}`, payload: { task_id: tid, status: 'Success', file_id: '205258526306433' } })

  for (const key of [id, tid]) {
    const res = await app.inject(`/v1/tasks/${key}`)
    t.equal(res.statusCode, 200)
    const task = res.json()
    t.match(task, {
      id,
      task_id: tid,
      provider: 'minimax',
      model: 'S2V-01',
      status: 'success',
      provider_status: 'Success',
      file_id: '205258526306433',
      error: null,
      prompt: 'seeded',
      metadata: { order: 42 },
      created_at: String,
      updated_at: String
    })
    t.same(task.events.map((event: { source: string, status: string | null, outcome: string }) => [event.source, event.status, event.outcome]),
      [['submit', null, 'created'], ['submit', 'processing', 'applied'], ['callback', 'success', 'applied']])
    t.equal(task.events_total, 3)
  }
})

t.test('a lookup carries the latest 100 events and events_total; /history pages through all of them, oldest first', async (t) => {
  const app = await build(t)
  const { id, seq } = await seedTask(app.taskStore, { task_id: taskId() })
  // Written straight into the table: no command writes a history this long in one go.
  const repo = new TasksRepository(sqliteDb(app))
  // A history as long as a flood used to make one (refused pushes no longer write any): 150,000 events, the first two
  // the seeded task's own (created, processing).
  const TOTAL = 150_000
  repo.transaction(() => {
    for (let i = 2; i < TOTAL; i++) {
      repo.insertEvent({ task_seq: seq, at: new Date(Date.UTC(2026, 0, 1) + i).toISOString(), source: 'callback', status: 'processing', provider_status: `p${i}`, outcome: 'duplicate', detail: null })
    }
  })
  const started = performance.now()
  const res = await app.inject(`/v1/tasks/${id}`)
  const ms = performance.now() - started
  t.equal(res.statusCode, 200)
  const task = res.json()
  t.equal(task.events.length, 100)
  t.equal(task.events_total, TOTAL)
  t.same(task.events.map((event: { provider_status: string }) => event.provider_status),
    Array.from({ length: 100 }, (_, i) => `p${TOTAL - 100 + i}`), 'the latest 100, oldest first')
  t.ok(res.rawPayload.length < 50_000, `${res.rawPayload.length} bytes`)
  t.comment(`lookup of a task with ${TOTAL} events: ${res.rawPayload.length} bytes in ${ms.toFixed(1)} ms`)

  // Page through the whole history.
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const page: any = (await app.inject(`/v1/tasks/${id}/history?limit=1000${cursor ? `&cursor=${cursor}` : ''}`)).json()
    t.ok(page.items.length <= 1000)
    for (const event of page.items) seen.push(event.provider_status ?? event.outcome)
    cursor = page.next_cursor
    pages += 1
  } while (cursor !== null)
  t.equal(pages, TOTAL / 1000)
  t.equal(seen.length, TOTAL, 'every event once')
  t.same(seen.slice(0, 3), ['created', 'applied', 'p2'], 'oldest first')
  t.equal(seen.at(-1), `p${TOTAL - 1}`)

  const first = (await app.inject(`/v1/tasks/${id}/history`)).json()
  t.equal(first.items.length, 100, 'default limit')
  t.same(Object.keys(first.items[0]), ['at', 'source', 'status', 'provider_status', 'outcome'])
  for (const query of ['limit=0', 'limit=1001', 'limit=x', 'cursor=bm9wZQ', 'other=1']) {
    const bad = await app.inject(`/v1/tasks/${id}/history?${query}`)
    t.equal(bad.statusCode, 400, query)
    t.match(bad.json(), { code: String })
  }
  t.equal((await app.inject('/v1/tasks/nope/history')).statusCode, 404)
})

t.test('unknown ids answer 404 JSON', async (t) => {
  const app = await build(t)
  for (const url of ['/v1/tasks/nope', `/v1/tasks/${taskId()}`]) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().code, 'not_found')
  }
  // MiniMax's query answers its refusals with HTTP 200 and base_resp, and so does ours (its clients read nothing else).
  const unknown = await app.inject('/v1/query/video_generation?task_id=123')
  t.equal(unknown.statusCode, 200)
  t.match(unknown.json(), { code: 'not_found', statusCode: 404, base_resp: { status_code: 2013, status_msg: /task 123 not found/ } })
  t.match((await app.inject('/v1/query/video_generation')).json(), { statusCode: 400, code: 'invalid_request', base_resp: { status_code: 2013 } }, 'task_id is required')
  t.equal((await app.inject(`/v1/tasks/${'x'.repeat(150)}`)).json().code, 'invalid_request', 'an over-long id')
  t.equal((await app.inject('/nowhere')).json().code, 'not_found')
})

t.test('the list pages newest first with an opaque cursor and a status filter', async (t) => {
  const app = await build(t)
  const ids = []
  for (let i = 0; i < 5; i++) ids.push((await seedTask(app.taskStore, i % 2 === 0 ? { task_id: taskId() } : {})).id)
  const newestFirst = [...ids].reverse()

  const first = (await app.inject('/v1/tasks?limit=2')).json()
  t.same(first.items.map((task: { id: string }) => task.id), newestFirst.slice(0, 2))
  t.type(first.next_cursor, 'string')
  const second = (await app.inject(`/v1/tasks?limit=2&cursor=${first.next_cursor}`)).json()
  t.same(second.items.map((task: { id: string }) => task.id), newestFirst.slice(2, 4))
  const last = (await app.inject(`/v1/tasks?limit=2&cursor=${second.next_cursor}`)).json()
  t.same(last.items.map((task: { id: string }) => task.id), newestFirst.slice(4))
  t.equal(last.next_cursor, null)

  const processing = (await app.inject('/v1/tasks?status=processing')).json()
  t.same(processing.items.map((task: { id: string }) => task.id), [ids[4], ids[2], ids[0]])
  t.notOk('events' in processing.items[0], 'list items leave the history out')

  for (const bad of ['status=done', 'limit=0', 'limit=101', 'limit=abc', 'cursor=garbage', 'extra=1']) {
    const res = await app.inject(`/v1/tasks?${bad}`)
    t.equal(res.statusCode, 400, bad)
  }
})

t.test('the MiniMax-compatible query answers in MiniMax\'s vocabulary', async (t) => {
  const app = await build(t)
  const query = async (key: string) => (await app.inject(`/v1/query/video_generation?task_id=${key}`)).json()
  const tid = taskId()
  const { id, token } = await seedTask(app.taskStore, { task_id: tid })
  t.same(await query(tid), { task_id: tid, status: 'Processing', file_id: '', base_resp: { status_code: 0, status_msg: 'success' } })
  await app.inject({ method: 'POST', url: `/get_callback/${token}`, payload: { task_id: tid, status: 'Queueing' } })
  t.equal((await query(tid)).status, 'Queueing')
  await app.inject({ method: 'POST', url: `/get_callback/${token}`, payload: { task_id: tid, status: 'success', file_id: '7' } })
  t.same(await query(id), { task_id: tid, status: 'Success', file_id: '7', base_resp: { status_code: 0, status_msg: 'success' } }, 'our id works too')

  const failedId = taskId()
  const failed = await seedTask(app.taskStore, { task_id: failedId })
  await app.inject({ method: 'POST', url: `/get_callback/${failed.token}`, payload: { task_id: failedId, status: 'failed', base_resp: { status_code: 1027, status_msg: 'sensitive' } } })
  t.equal((await query(failedId)).status, 'Fail')
  t.same((await app.inject(`/v1/tasks/${failedId}`)).json().error, { code: '1027', message: 'sensitive' })
})

t.test('health and readiness', async (t) => {
  const app = await build(t)
  t.same((await app.inject('/healthz')).json(), { status: 'ok' })
  t.same((await app.inject('/readyz')).json(), { status: 'ok' })
  sqliteDb(app).close()
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 503, 'not ready once the database is unusable')
  t.equal(res.json().status, 'unavailable')
  t.equal((await app.inject('/healthz')).statusCode, 200, 'still alive')
})
