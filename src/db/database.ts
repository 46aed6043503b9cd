// Opens the SQLite file with the settings its authors recommend for a busy single-writer service.
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'

export type Db = Database.Database

// How long a statement waits for a lock held by another connection (a backup, the sqlite3 CLI) before failing.
const BUSY_TIMEOUT_MS = 5000

export function openDatabase (path: string, options: { synchronous: 'FULL' | 'NORMAL' }): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${options.synchronous}`)
  db.pragma('foreign_keys = ON')
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
  return db
}
