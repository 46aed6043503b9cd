import t from 'tap'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { openDatabase } from '../../src/db/database.js'
import { listMigrations, migrate, MigrationError, MIGRATIONS_DIR } from '../../src/db/migrate.js'
import { tempDir } from '../helper.js'

t.test('a fresh database gets every migration once, with the recommended settings', async (t) => {
  const db = openDatabase(join(tempDir(t), 'nested', 'folder', 's2v.db'), { synchronous: 'FULL' })
  t.teardown(() => db.close())
  const files = readdirSync(MIGRATIONS_DIR).filter((file) => file.endsWith('.sql')).sort()
  t.ok(files.length >= 2)
  t.same(migrate(db), files, 'every migration, in order')
  t.same(migrate(db), [], 'a second run applies nothing')
  t.equal(db.pragma('user_version', { simple: true }), files.length)
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(db.pragma('foreign_keys', { simple: true }), 1)
  t.equal(db.pragma('synchronous', { simple: true }), 2, 'FULL')
  t.equal(db.pragma('cache_size', { simple: true }), -4096, 'a 4 MiB page cache (better-sqlite3 would keep 16 MiB)')
  const tables = db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table'").all() as Array<{ name: string, sql: string }>
  for (const name of ['idempotency_keys', 'task_events', 'tasks']) t.ok(tables.some((table) => table.name === name), `${name} exists`)
  for (const table of tables) t.match(table.sql, /STRICT/, `${table.name} is STRICT`)
})

t.test('a failing migration names its file and leaves nothing half-applied', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, '001-good.sql'), 'CREATE TABLE a (x INTEGER) STRICT;')
  writeFileSync(join(dir, '002-bad.sql'), 'CREATE TABLE b (x INTEGER) STRICT; INSERT INTO nowhere VALUES (1);')
  const db = openDatabase(join(dir, 'db.sqlite'), { synchronous: 'NORMAL' })
  t.teardown(() => db.close())
  t.throws(() => migrate(db, dir), /migration 002-bad\.sql failed: no such table: nowhere/)
  t.equal(db.pragma('user_version', { simple: true }), 1, 'the good one stays applied')
  t.notOk(db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'b'").get(), 'the bad one rolled back whole')
})

t.test('migration files must be numbered without gaps, and an older release refuses a newer database', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, '001-a.sql'), 'SELECT 1;')
  writeFileSync(join(dir, '003-c.sql'), 'SELECT 1;')
  t.throws(() => listMigrations(dir), /003-c\.sql is out of place/)

  const badName = tempDir(t)
  writeFileSync(join(badName, 'init.sql'), 'SELECT 1;')
  t.throws(() => listMigrations(badName), MigrationError)

  const db = openDatabase(':memory:', { synchronous: 'NORMAL' })
  t.teardown(() => db.close())
  // Far above any real count of migrations, whatever lands next.
  db.pragma('user_version = 999')
  t.throws(() => migrate(db), /at version 999/)
  mkdirSync(join(dir, 'empty'))
  t.same(listMigrations(join(dir, 'empty')), [])
})
