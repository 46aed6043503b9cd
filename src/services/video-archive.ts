// Keeps our own copy of every finished video (VIDEO_DIR): downloads pending ones, retries with backoff, survives restarts.
import { rmSync } from 'node:fs'
import type { TaskRow } from '../db/tasks-repository.js'
import { Ticker } from '../lib/ticker.js'
import { DownloadError, downloadVideo, type DownloadOptions } from './video-download.js'
import type { Reconciler } from './reconciler.js'
import type { Log, TaskStore } from './task-store.js'

export type ArchiverOptions = {
  store: TaskStore
  reconciler: Reconciler
  dir: string
  maxBytes: number
  log: Log
  tickMs: number
  /** Wall-clock limit of one download. */
  downloadTimeoutMs: number
  /**
   * How long a claimed download is this archiver's alone (another replica's claim skips it): longer than a download
   * with its link look-up can take, so that only a claimer that died leaves it to another.
   */
  leaseMs: number
  fetch?: typeof fetch
  /** The SSRF guard every download URL and redirect goes through. */
  guard?: DownloadOptions['guard']
}

// Downloads are retried with doubling pauses (30 s … ~2 h) and given up after this many attempts.
const MAX_ATTEMPTS = 8
const FIRST_RETRY_MS = 30_000
// One download at a time: videos are large and the link budget is small.
const DOWNLOADS_PER_TICK = 1

export class VideoArchiver {
  readonly #options: ArchiverOptions
  readonly #abort = new AbortController()
  readonly #ticker: Ticker

  constructor (options: ArchiverOptions) {
    this.#options = options
    this.#ticker = new Ticker(() => this.runOnce(), options.tickMs, (err) => options.log.error({ err }, 'archiver pass failed'))
  }

  start (): void { this.#ticker.start() }

  async stop (): Promise<void> {
    this.#abort.abort() // an unfinished download stays pending and resumes at the next start
    await this.#ticker.stop()
  }

  /**
   * Downloads what is due, claimed first so that no other replica downloads it too (pending rows survive restarts:
   * a download cut short is given back, and one of a process that died is due again when its claim runs out).
   */
  async runOnce (now: number = Date.now()): Promise<void> {
    for (const task of await this.#options.store.claimDueArchives(new Date(now).toISOString(), DOWNLOADS_PER_TICK, this.#options.leaseMs)) {
      if (this.#abort.signal.aborted) return await this.#giveBack(task) // stopped while it was being claimed
      await this.#archive(task)
    }
  }

  async #archive (queued: TaskRow): Promise<void> {
    const { store, reconciler, dir, maxBytes, downloadTimeoutMs, log } = this.#options
    const task = await reconciler.freshVideoLink(queued)
    const attempts = task.archive_attempts + 1
    try {
      if (!task.video_url) throw new Error('no download link yet')
      const file = await downloadVideo({
        url: task.video_url, dir, name: task.id, maxBytes, timeoutMs: downloadTimeoutMs, signal: this.#abort.signal, ...(this.#options.fetch ? { fetch: this.#options.fetch } : {}), ...(this.#options.guard ? { guard: this.#options.guard } : {})
      })
      if (!await store.recordArchive(task.seq, { state: 'stored', path: file.path, bytes: file.bytes, sha256: file.sha256, attempts, nextAt: null })) {
        rmSync(file.path, { force: true }) // retention purged the task during the download
        return
      }
      log.info({ id: task.id, bytes: file.bytes }, 'video archived')
    } catch (err) {
      if (this.#abort.signal.aborted) return await this.#giveBack(task)
      const retryable = !(err instanceof DownloadError) || err.retryable || err.expiredLink
      const giveUp = !retryable || attempts >= MAX_ATTEMPTS
      if (err instanceof DownloadError && err.expiredLink) await store.expireVideoLink(task.seq)
      const nextAt = giveUp ? null : new Date(Date.now() + FIRST_RETRY_MS * 2 ** (attempts - 1)).toISOString()
      await store.recordArchive(task.seq, { state: giveUp ? 'failed' : 'pending', path: null, bytes: null, sha256: null, attempts, nextAt })
      log.warn({ err, id: task.id, attempts, gave_up: giveUp }, 'video download failed')
    }
  }

  /**
   * Shutting down mid-download: the row is due again now, unchanged otherwise, so the next start (or another replica)
   * resumes it at once rather than when the claim runs out. Best effort: the claim's end is the fallback.
   */
  async #giveBack (task: TaskRow): Promise<void> {
    const { store, log } = this.#options
    const archive = { state: 'pending', path: null, bytes: null, sha256: null, attempts: task.archive_attempts, nextAt: new Date().toISOString() } as const
    await store.recordArchive(task.seq, archive).catch((err: unknown) => { log.warn({ err, id: task.id }, 'could not give an unfinished download back') })
  }
}
