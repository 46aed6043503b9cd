// Group commits made durable off the event loop: commit without the fsync, then fdatasync the WAL on libuv's threads.
import { open, type FileHandle } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Db } from './database.js'

/**
 * With synchronous=FULL, SQLite fsyncs the WAL inside COMMIT: better-sqlite3 is synchronous, so the event loop stands
 * still for the whole fsync (0.4 ms on our disks), no request is read meanwhile, and the next group cannot form.
 * A WalSync commits one transaction with synchronous=NORMAL (the frames reach the WAL file, not yet the disk), and
 * flush() then fdatasyncs the WAL file on the thread pool while the loop goes on. Once flush() resolves, every frame
 * committed before it was called is on disk: exactly what FULL's commit guarantees, so whoever waits for flush()
 * before answering (the push's 200) keeps FULL's promise. SQLite itself syncs the WAL before every checkpoint in
 * NORMAL too, so the database file never gets ahead of the WAL. The WAL file is the same file (inode) for as long as
 * the connection is open: SQLite rewinds it after a checkpoint, never replaces it.
 */
export class WalSync {
  readonly #walPath: string
  readonly #db: Db
  #file: Promise<FileHandle> | null = null
  #flushing: Promise<void> | null = null

  constructor (db: Db) {
    this.#walPath = `${resolve(db.name)}-wal`
    this.#db = db
  }

  /** Runs fn (a transaction) with its commit's fsync left to the next flush(). */
  unsynced<T> (fn: () => T): T {
    // exec, not a prepared statement: SQLite applies this pragma while compiling it, so a kept statement run again
    // does not reliably set it again.
    this.#db.exec('PRAGMA synchronous = NORMAL')
    try {
      return fn()
    } finally {
      this.#db.exec('PRAGMA synchronous = FULL')
    }
  }

  /** Resolves once everything committed before the call is on disk. */
  async flush (): Promise<void> {
    // The WAL exists once anything was committed; it is opened on first use and kept open.
    if (!this.#file) {
      const opening = open(this.#walPath, 'r')
      this.#file = opening
      opening.catch(() => { if (this.#file === opening) this.#file = null }) // tried again on the next flush
    }
    const flushing = this.#file.then((file) => file.datasync())
    this.#flushing = flushing
    await flushing
  }

  /** After the last flush has finished: closes the WAL file (call before closing the database). */
  async close (): Promise<void> {
    await this.#flushing?.catch(() => {})
    const file = this.#file
    this.#file = null
    if (file) await (await file).close()
  }
}
