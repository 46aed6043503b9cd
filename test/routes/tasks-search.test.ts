// GET /v1/tasks filters and search (the dashboard's table): provider, caller, our id or its start, task_id, metadata values.
import t from 'tap'
import { build, seedTask, taskId, sqliteDb } from '../helper.js'

t.test('search finds a task by our id, its first characters, MiniMax\'s task_id or a metadata value', async (t) => {
  const app = await build(t)
  const tid = taskId()
  const wanted = await seedTask(app.taskStore, { task_id: tid, metadata: { ticket: 'T-42', attempt: 3, nested: { ticket: 'deep' } } })
  const other = await seedTask(app.taskStore, { metadata: { ticket: 'T-43' } })
  const ids = async (query: string) => (await app.inject({ url: `/v1/tasks?${query}` })).json().items.map((task: { id: string }) => task.id)
  t.same(await ids(`q=${wanted.id}`), [wanted.id], 'our id')
  t.same(await ids(`q=${wanted.id.slice(0, 8)}`), [wanted.id], 'its first 8 characters, as the table shows them')
  t.same(await ids(`q=${tid}`), [wanted.id], 'MiniMax\'s task_id')
  t.same(await ids('q=T-42'), [wanted.id], 'a metadata value')
  t.same(await ids('q=3'), [wanted.id], 'a number in metadata, as text')
  t.same(await ids('q=deep'), [], 'only top-level values: a nested object is not searched')
  t.same(await ids('q=T-4%25'), [], 'LIKE wildcards are taken literally')
  t.same(await ids('q=nothing'), [])
  t.same(await ids('q=T-43&status=processing'), [], 'combined with the other filters')
  t.same(await ids('q=T-43&status=submitting'), [other.id])
})

t.test('provider and (an operator\'s) caller filters, with cursor paging over the filtered list', async (t) => {
  const app = await build(t, { ADMIN_TOKENS: 'ops:ops-token' })
  const seeded = await Promise.all(Array.from({ length: 5 }, async () => await seedTask(app.taskStore)))
  sqliteDb(app).prepare("UPDATE tasks SET provider = 'modellix' WHERE seq IN (?, ?, ?)").run(seeded[0]!.seq, seeded[2]!.seq, seeded[4]!.seq)
  sqliteDb(app).prepare("UPDATE tasks SET caller = 'team-a' WHERE seq = ?").run(seeded[1]!.seq)
  const page = async (query: string) => (await app.inject({ url: `/v1/tasks?${query}`, headers: { authorization: 'Bearer ops-token' } })).json()
  const first = await page('provider=modellix&limit=2')
  t.same(first.items.map((task: { id: string }) => task.id), [seeded[4]!.id, seeded[2]!.id], 'newest first')
  const second = await page(`provider=modellix&limit=2&cursor=${first.next_cursor as string}`)
  t.same(second.items.map((task: { id: string }) => task.id), [seeded[0]!.id])
  t.equal(second.next_cursor, null)
  t.same((await page('caller=team-a')).items.map((task: { id: string }) => task.id), [seeded[1]!.id])
  const bad = await app.inject({ url: '/v1/tasks?provider=other', headers: { authorization: 'Bearer ops-token' } })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'invalid_request')
})

t.test('a caller\'s search and filters stay within its own tasks; only an operator filters by caller', async (t) => {
  const app = await build(t, { API_TOKENS: 'alice:alice-token,bob:bob-token', ADMIN_TOKENS: 'ops:ops-token' })
  const alices = await seedTask(app.taskStore, { metadata: { ticket: 'T-1' } })
  const bobs = await seedTask(app.taskStore, { metadata: { ticket: 'T-1' } })
  sqliteDb(app).prepare("UPDATE tasks SET caller = 'alice' WHERE seq = ?").run(alices.seq)
  sqliteDb(app).prepare("UPDATE tasks SET caller = 'bob' WHERE seq = ?").run(bobs.seq)
  const ids = async (token: string, query: string) =>
    (await app.inject({ url: `/v1/tasks?${query}`, headers: { authorization: `Bearer ${token}` } })).json().items.map((task: { id: string }) => task.id)
  t.same(await ids('bob-token', 'q=T-1'), [bobs.id], 'a metadata search finds bob\'s only')
  t.same(await ids('bob-token', `q=${alices.id}`), [], 'alice\'s id finds nothing for bob')
  t.same(await ids('bob-token', 'caller=alice'), [], 'naming another caller shows nothing')
  t.same(await ids('bob-token', 'caller=bob&provider=minimax'), [bobs.id])
  t.same(await ids('ops-token', 'q=T-1'), [bobs.id, alices.id], 'an operator searches everyone\'s')
  t.same(await ids('ops-token', 'caller=alice'), [alices.id], 'and filters by caller')
})
