// Bench baseline, run as a child process: the naive push receiver, Fastify + better-sqlite3 with one INSERT per push.
// What anyone would write first: no group commit, no state machine; it answers after its own durable (FULL) commit.
import Database from 'better-sqlite3'
import Fastify from 'fastify'
import { loggerOptions } from '../dist/logger.js'

// The service's durability: WAL journal, every commit fsynced (synchronous=FULL).
const db = new Database(process.env.DATABASE_PATH)
db.pragma('journal_mode = WAL')
db.pragma('synchronous = FULL')
db.exec(`CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY, token TEXT NOT NULL, task_id TEXT NOT NULL, status TEXT NOT NULL, body TEXT NOT NULL, at TEXT NOT NULL
) STRICT`)
const insert = db.prepare('INSERT INTO events (token, task_id, status, body, at) VALUES (?, ?, ?, ?, ?)')

const app = Fastify({ logger: loggerOptions(process.env.LOG_LEVEL ?? 'info') })

// The same path and bodies as the service's pushes (task_id, status, and file_id/base_resp on a final one).
app.post('/get_callback/:token', {
  schema: {
    body: {
      type: 'object',
      properties: { task_id: { type: 'string' }, status: { type: 'string' }, file_id: { type: 'string' }, base_resp: { type: 'object' } },
      required: ['task_id', 'status']
    },
    response: { 200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] } }
  }
}, async (request) => {
  // better-sqlite3 is synchronous: the INSERT (its own transaction) is on disk when run() returns.
  insert.run(request.params.token, request.body.task_id, request.body.status, JSON.stringify(request.body), new Date().toISOString())
  return { status: 'success' }
})

process.once('SIGTERM', () => { app.close().then(() => { db.close(); process.exit(0) }, () => process.exit(1)) })

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
