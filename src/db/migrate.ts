// Applies migrations/NNN-name.sql in order, each in its own transaction, tracking the last one in user_version.
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Db } from './database.js'

// src/db and dist/db both sit two levels below the repository root.
export const MIGRATIONS_DIR = resolve(import.meta.dirname, '..', '..', 'migrations')

const FILE_PATTERN = /^(\d+)-[\w-]+\.sql$/

export class MigrationError extends Error {
  override name = 'MigrationError'
}

type Migration = { version: number, file: string }

export function listMigrations (dir: string): Migration[] {
  const migrations = readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .map((file) => {
      const match = FILE_PATTERN.exec(file)
      if (!match) throw new MigrationError(`migration file name ${file} does not match NNN-name.sql`)
      return { version: Number(match[1]), file }
    })
    .sort((a, b) => a.version - b.version)
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new MigrationError(`migrations must be numbered 1, 2, 3... without gaps or repeats; ${migration.file} is out of place`)
    }
  })
  return migrations
}

/** Applies what is new; returns the files applied. */
export function migrate (db: Db, dir: string = MIGRATIONS_DIR): string[] {
  const current = db.pragma('user_version', { simple: true }) as number
  const migrations = listMigrations(dir)
  const latest = migrations.at(-1)?.version ?? 0
  if (current > latest) {
    throw new MigrationError(`the database is at version ${current} but this code knows migrations up to ${latest}: refusing to run an older release on it`)
  }
  const applied: string[] = []
  // Foreign keys are off while migrating (the pragma is a no-op inside a transaction, so it is set around them):
  // rebuilding a parent table (a new CHECK constraint) drops it, and with them on that drop would cascade into its
  // children's rows. Each migration is checked for dangling references before it commits instead.
  const foreignKeys = db.pragma('foreign_keys', { simple: true }) as number
  db.pragma('foreign_keys = OFF')
  try {
    for (const { version, file } of migrations.filter((migration) => migration.version > current)) {
      const sql = readFileSync(join(dir, file), 'utf8')
      try {
        db.transaction(() => {
          db.exec(sql)
          const dangling = db.pragma('foreign_key_check') as Array<{ table: string }>
          if (dangling.length > 0) throw new Error(`it leaves ${dangling.length} rows of ${dangling[0]!.table} pointing at nothing`)
          db.pragma(`user_version = ${version}`)
        })()
      } catch (err) {
        throw new MigrationError(`migration ${file} failed: ${(err as Error).message}`, { cause: err })
      }
      applied.push(file)
    }
  } finally {
    db.pragma(`foreign_keys = ${foreignKeys ? 'ON' : 'OFF'}`)
  }
  return applied
}
