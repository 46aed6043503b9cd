// Purges terminal tasks older than the retention period, with their history (by cascade) and archived videos.
import { rmSync } from 'node:fs'
import { setTimeout as pause } from 'node:timers/promises'
import type { Log, TaskStore } from './task-store.js'

const DAY_MS = 24 * 60 * 60 * 1000
// Pause between two batches of one drain: lets pushes and lookups queued meanwhile run (and write) first.
const BATCH_PAUSE_MS = 10

export type RetentionOptions = {
  store: Pick<TaskStore, 'purgeFinished'>
  /** Terminal tasks last updated longer ago than this are purged. */
  retentionDays: number
  /** Most tasks deleted per transaction: keeps each write lock short. */
  batchSize: number
  log: Log
  /** Removes one archived file; a missing file must not throw. */
  removeFile?: (path: string) => void
}

/** tasks deleted; archived videos removed (or already gone). */
export type PurgeResult = { tasks: number, files: number }

export class RetentionJob {
  readonly #store: Pick<TaskStore, 'purgeFinished'>
  readonly #retentionMs: number
  readonly #batchSize: number
  readonly #log: Log
  readonly #removeFile: (path: string) => void
  #loop: Promise<void> | undefined
  #stopped = false
  #wake: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (options: RetentionOptions) {
    if (!(options.retentionDays > 0)) throw new RangeError('retentionDays must be a positive number')
    if (!Number.isSafeInteger(options.batchSize) || options.batchSize < 1) throw new RangeError('batchSize must be a positive integer')
    this.#store = options.store
    this.#retentionMs = options.retentionDays * DAY_MS
    this.#batchSize = options.batchSize
    this.#log = options.log
    this.#removeFile = options.removeFile ?? ((path) => rmSync(path, { force: true }))
  }

  /** Deletes one batch of expired tasks in one transaction, then their archived files; returns what went. */
  async purgeOnce (now: Date = new Date()): Promise<PurgeResult> {
    const cutoff = new Date(now.getTime() - this.#retentionMs).toISOString()
    const rows = await this.#store.purgeFinished(cutoff, this.#batchSize)
    let files = 0
    // only after the commit: a rolled-back delete must not lose a video that is still referenced
    for (const { archive_path: path } of rows) {
      if (path === null) continue
      try {
        this.#removeFile(path)
        files += 1
      } catch (err) {
        this.#log.warn({ err, path }, 'retention: could not remove an archived video; the file is left behind')
      }
    }
    return { tasks: rows.length, files }
  }

  /** Drains expired tasks now and then every intervalMs, batch by batch, until stop(). */
  start (intervalMs: number): void {
    if (this.#loop) throw new Error('the retention job is already started')
    if (!(intervalMs > 0)) throw new RangeError('intervalMs must be positive')
    this.#stopped = false
    this.#loop = this.#run(intervalMs)
  }

  /** Stops the loop; resolves once a drain in progress has finished its current batch. */
  async stop (): Promise<void> {
    this.#stopped = true
    this.#wakeUp()
    await this.#loop
    this.#loop = undefined
  }

  async #run (intervalMs: number): Promise<void> {
    // start() runs before the app listens (onReady): the first batch waits a turn of the loop, so a backlog of
    // expired tasks on a large database never delays being ready.
    await pause(0)
    while (!this.#stopped) {
      await this.#drain()
      await this.#sleep(intervalMs)
    }
  }

  /** Purges batch after batch, yielding between them, until a short batch says nothing old is left. */
  async #drain (): Promise<void> {
    const started = performance.now()
    const total = { tasks: 0, files: 0, batches: 0 }
    while (!this.#stopped) {
      let batch: PurgeResult
      try {
        batch = await this.purgeOnce()
      } catch (err) {
        // e.g. SQLITE_BUSY from another connection: nothing was deleted, the next interval tries again
        this.#log.error({ err }, 'retention: purge failed; retrying at the next interval')
        break
      }
      total.tasks += batch.tasks
      total.files += batch.files
      total.batches += 1
      if (batch.tasks < this.#batchSize) break
      await pause(BATCH_PAUSE_MS)
    }
    if (total.tasks > 0) {
      this.#log.info({ ...total, ms: Math.round(performance.now() - started) }, 'retention: purged expired tasks')
    }
  }

  async #sleep (ms: number): Promise<void> {
    if (this.#stopped) return
    await new Promise<void>((resolve) => {
      this.#wake = resolve
      // a pending purge alone must not keep the process alive
      this.#timer = setTimeout(resolve, ms).unref()
    })
    this.#wake = undefined
  }

  #wakeUp (): void {
    clearTimeout(this.#timer)
    this.#wake?.()
  }
}
