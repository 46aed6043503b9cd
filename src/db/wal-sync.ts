// Group commits made durable after the commit: commit without the fsync, then fdatasync the WAL, on the loop while the
// disk is quick and on libuv's threads while it is slow.
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Db } from './database.js'

// An fsync this quick is cheaper on the loop: handing it to the thread pool and back costs ~70 µs of CPU per group
// (two thread wake-ups and the loop's own), more than the loop waits here (measured: bench/README, issue 13).
const ON_LOOP_MAX_MS = 1
// While fsyncs go to the thread pool, one a second is timed on the loop again, to see whether the disk is quick again:
// at worst one slow fsync a second holds the loop.
const RETRY_ON_LOOP_MS = 1000

/** How one fdatasync is done: on the loop, or on the thread pool. Tests give their own. */
export type FileSync = {
  onLoop: (fd: number) => void
  onPool: (fd: number) => Promise<void>
}

const NODE_FILE_SYNC: FileSync = {
  onLoop: fdatasyncSync,
  onPool: (fd) => new Promise((resolve, reject) => { fdatasync(fd, (err) => { if (err) reject(err); else resolve() }) })
}

/**
 * With synchronous=FULL, SQLite fsyncs the WAL inside COMMIT, wherever COMMIT runs. A WalSync commits one transaction
 * with synchronous=NORMAL (the frames reach the WAL file, not yet the disk), and flush() then fdatasyncs the WAL file.
 * Once flush() resolves, every frame committed before it was called is on disk: exactly what FULL's commit guarantees,
 * so whoever waits for flush() before answering (the push's 200) keeps FULL's promise. SQLite itself syncs the WAL
 * before every checkpoint in NORMAL too, so the database file never gets ahead of the WAL. The WAL file is the same
 * file (inode) for as long as the connection is open: SQLite rewinds it after a checkpoint, never replaces it.
 *
 * Where the fsync runs is chosen by how long the last one on the loop took: under ON_LOOP_MAX_MS it runs on the loop
 * (the requests that arrive meanwhile wait in the socket buffers and form the next group all the same); above, on the
 * thread pool, so a slow disk never holds the loop (challenges included) for more than one fsync a second.
 */
export class WalSync {
  readonly #walPath: string
  readonly #db: Db
  readonly #sync: FileSync
  readonly #now: () => number
  #fd: number | null = null
  #onLoop = true
  #triedOnLoopAt = 0
  #flushing: Promise<void> | null = null

  constructor (db: Db, options: { sync?: FileSync, now?: () => number } = {}) {
    this.#walPath = `${resolve(db.name)}-wal`
    this.#db = db
    this.#sync = options.sync ?? NODE_FILE_SYNC
    this.#now = options.now ?? performance.now.bind(performance)
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

  /** Resolves once everything committed before the call is on disk; rejects if that is not known. */
  async flush (): Promise<void> {
    // The WAL exists once anything was committed; it is opened on first use and kept open (tried again if it failed).
    this.#fd ??= openSync(this.#walPath, 'r')
    const started = this.#now()
    if (this.#onLoop || started - this.#triedOnLoopAt >= RETRY_ON_LOOP_MS) {
      this.#sync.onLoop(this.#fd)
      this.#triedOnLoopAt = started
      this.#onLoop = this.#now() - started < ON_LOOP_MAX_MS
      return
    }
    const flushing = this.#sync.onPool(this.#fd)
    this.#flushing = flushing
    await flushing
  }

  /** Whether the next flush runs on the loop (the last one timed there was quick). */
  get onLoop (): boolean { return this.#onLoop }

  /** After the last flush has finished: closes the WAL file (call before closing the database). */
  async close (): Promise<void> {
    await this.#flushing?.catch(() => {})
    const fd = this.#fd
    this.#fd = null
    if (fd !== null) closeSync(fd)
  }
}
