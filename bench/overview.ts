// `npx tsx bench/overview.ts [tasks]`: how long GET /v1/stats (the dashboard's overview) takes on a database holding
// `tasks` tasks (default 200,000) created over the last 24 hours, each with its events, an operator asking.
import { mkdtempSync, rmSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../src/app.js'
import { sqliteOf } from '../src/plugins/database.js'
import { loadConfig } from '../src/config.js'

const tasks = Number(process.argv[2] ?? 200_000)
const ROUNDS = 20
const dir = mkdtempSync(join(tmpdir(), 's2v-overview-'))
process.once('exit', () => rmSync(dir, { recursive: true, force: true }))

const app = await buildApp(loadConfig({ DATABASE_PATH: join(dir, 'overview.db'), LOG_LEVEL: 'silent', ADMIN_TOKENS: 'ops:ops-token' }))
const db = sqliteOf(app.engine, 'the overview bench')
await app.ready()
const insertTask = db.prepare(`INSERT INTO tasks (id, provider, task_id, model, status, image_ref, callback_token_hash, caller, created_at, updated_at)
  VALUES (?, 'minimax', ?, 'S2V-01', ?, 'https://example.com/face.jpg', x'00', ?, ?, ?)`)
const insertEvent = db.prepare("INSERT INTO task_events (task_seq, at, source, status, outcome) VALUES (?, ?, 'callback', ?, 'applied')")
const now = Date.now()
const fill = db.transaction(() => {
  for (let i = 0; i < tasks; i++) {
    const created = now - Math.floor(Math.random() * 86_400_000)
    const status = i % 10 === 0 ? 'failed' : i % 25 === 0 ? 'processing' : 'success'
    const finished = new Date(created + 30_000 + Math.floor(Math.random() * 120_000)).toISOString()
    const { lastInsertRowid } = insertTask.run(randomUUID(), `3${String(i).padStart(17, '0')}`, status, `team-${i % 8}`, new Date(created).toISOString(), finished)
    insertEvent.run(lastInsertRowid, new Date(created + 100).toISOString(), 'processing')
    if (status !== 'processing') insertEvent.run(lastInsertRowid, finished, status)
  }
})
fill()
db.exec('ANALYZE')

for (const [who, token] of [['operator (every task)', 'ops-token']] as const) {
  const times: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const started = performance.now()
    const res = await app.inject({ url: '/v1/stats', headers: { authorization: `Bearer ${token}` } })
    times.push(performance.now() - started)
    if (res.statusCode !== 200) throw new Error(`GET /v1/stats answered ${res.statusCode}`)
  }
  times.sort((a, b) => a - b)
  console.log(`${tasks} tasks, ${who}: GET /v1/stats median ${times[ROUNDS / 2]!.toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms over ${ROUNDS} requests`)
}
await app.close()
