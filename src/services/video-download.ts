// Downloads one result video to disk: streamed, hashed, size-checked, fsynced, then renamed into place atomically.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises'
import { readdirSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import type { UrlVerdict } from './notifications/url-guard.js'

export type DownloadFailure =
  | 'http_status' // the server answered with a non-2xx status
  | 'too_large' // the body is (or declares to be) larger than maxBytes
  | 'length_mismatch' // the body ended before (or went past) its declared Content-Length
  | 'timeout' // the whole download took longer than timeoutMs
  | 'network' // connection refused, reset, DNS, TLS, redirect loop
  | 'storage' // the local file system failed (full disk, permissions)
  | 'aborted' // the caller's signal fired (shutdown)
  | 'refused' // the URL (or a redirect) is not one we fetch: plain http, a private address (SSRF guard)

export class DownloadError extends Error {
  override name = 'DownloadError'
  readonly reason: DownloadFailure
  /** Worth trying again later (with backoff). */
  readonly retryable: boolean
  /** The signed link is likely expired (403/410): fetch a fresh download URL from the provider before retrying. */
  readonly expiredLink: boolean
  readonly httpStatus: number | null
  /** The server's Retry-After, when it sent one in seconds. */
  readonly retryAfterMs: number | null

  constructor (reason: DownloadFailure, message: string, details: {
    retryable: boolean, expiredLink?: boolean, httpStatus?: number | null, retryAfterMs?: number | null, cause?: unknown
  }) {
    super(message, { cause: details.cause })
    this.reason = reason
    this.retryable = details.retryable
    this.expiredLink = details.expiredLink ?? false
    this.httpStatus = details.httpStatus ?? null
    this.retryAfterMs = details.retryAfterMs ?? null
  }
}

export type DownloadOptions = {
  url: string
  /** Created if missing. */
  dir: string
  /** File name without extension: the video lands at <dir>/<name>.mp4. */
  name: string
  maxBytes: number
  /** Deadline for the whole download, headers and body. */
  timeoutMs: number
  fetch?: typeof fetch
  /** Aborts the download (e.g. on shutdown); the temporary file is removed. */
  signal?: AbortSignal
  /** Checks the URL and every redirect before it is fetched (the SSRF guard); without it every URL is fetched. */
  guard?: (url: string) => Promise<UrlVerdict>
}

export type DownloadedVideo = { path: string, bytes: number, sha256: string }

// Leftovers look like .<name>.<hex>.part; nothing else in the directory is ever touched by the clean-up.
const PART_FILE = /^\..+\.[0-9a-f]{12}\.part$/
// A name is one plain path segment: no separators, no leading dot (which would hide it among the .part files).
const SAFE_NAME = /^[\w-][\w.-]{0,199}$/
// Statuses that say "later" rather than "never": request timeout and too many requests.
const RETRYABLE_4XX = new Set([408, 429])
// Statuses a CDN uses for a signed URL whose signature has expired.
const EXPIRED_LINK = new Set([403, 410])
const REDIRECT = new Set([301, 302, 303, 307, 308])
// A CDN redirects once or twice (to a regional edge); more is a loop or an attempt to walk us somewhere.
const MAX_REDIRECTS = 5

export async function downloadVideo (options: DownloadOptions): Promise<DownloadedVideo> {
  const { url, dir, name, maxBytes, timeoutMs } = options
  if (!SAFE_NAME.test(name) || name.includes('..')) throw new TypeError(`video file name ${JSON.stringify(name)} is not a plain file name`)
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new TypeError('maxBytes must be a positive integer')
  if (!(timeoutMs > 0)) throw new TypeError('timeoutMs must be positive')

  const timeout = new AbortController()
  const timer = setTimeout(() => timeout.abort(new DownloadError('timeout', `download did not finish within ${timeoutMs} ms`, { retryable: true })), timeoutMs)
  const signal = options.signal ? AbortSignal.any([timeout.signal, options.signal]) : timeout.signal
  const finalPath = join(dir, `${name}.mp4`)
  const partPath = join(dir, `.${name}.${randomBytes(6).toString('hex')}.part`)
  let file: FileHandle | undefined
  let declared: number | null = null
  const meter = new Meter(maxBytes)
  try {
    const response = await request(options.fetch ?? fetch, url, signal, options.guard)
    declared = declaredLength(response)
    if (declared !== null && declared > maxBytes) {
      await response.body?.cancel().catch(() => {})
      throw new DownloadError('too_large', `the video declares ${declared} bytes, more than the ${maxBytes} allowed`, { retryable: false })
    }
    if (!response.body) throw new DownloadError('length_mismatch', 'the server answered without a body', { retryable: true })

    file = await storage(async () => {
      await mkdir(dir, { recursive: true })
      return await open(partPath, 'wx')
    })
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), meter, writeTo(file), { signal })
    if (declared !== null && meter.bytes !== declared) throw shortBody(meter.bytes, declared)
    const handle = file
    await storage(async () => {
      await handle.sync()
      await handle.close()
    })
    file = undefined
    signal.throwIfAborted()
    await storage(async () => {
      await rename(partPath, finalPath)
      await syncDirectory(dir)
    })
    return { path: finalPath, bytes: meter.bytes, sha256: meter.digest() }
  } catch (err) {
    await file?.close().catch(() => {})
    await rm(partPath, { force: true }).catch(() => {})
    throw asDownloadError(err, signal, declared, meter.bytes)
  } finally {
    clearTimeout(timer)
  }
}

/** Removes temporary files left by downloads that died with the process; returns how many it removed. */
export function removeStaleParts (dir: string, olderThanMs: number): number {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw err
  }
  const cutoff = Date.now() - olderThanMs
  let removed = 0
  for (const name of names.filter((candidate) => PART_FILE.test(candidate))) {
    const path = join(dir, name)
    try {
      if (statSync(path).mtimeMs > cutoff) continue
      unlinkSync(path)
      removed += 1
    } catch (err) {
      // another process (or a concurrent clean-up) removed it first
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  return removed
}

/** Fetches url, following redirects ourselves so that the guard sees every hop before it is requested. */
async function request (fetchFn: typeof fetch, url: string, signal: AbortSignal, guard?: DownloadOptions['guard']): Promise<Response> {
  let response: Response
  let current = url
  for (let hop = 0; ; hop++) {
    const verdict = guard ? await guard(current) : { ok: true as const }
    if (!verdict.ok) throw new DownloadError('refused', `${hop === 0 ? 'the video URL' : 'a redirect of the video URL'} is refused: ${verdict.message}`, { retryable: false })
    // identity: a compressed body would make Content-Length describe bytes we never see
    response = await fetchFn(current, { redirect: 'manual', signal, headers: { 'accept-encoding': 'identity' } })
    const location = response.headers.get('location')
    if (!REDIRECT.has(response.status) || location === null) break
    await response.body?.cancel().catch(() => {})
    if (hop >= MAX_REDIRECTS) throw new DownloadError('network', `more than ${MAX_REDIRECTS} redirects`, { retryable: true })
    current = new URL(location, current).href
  }
  if (response.ok) return response
  await response.body?.cancel().catch(() => {})
  const status = response.status
  const expiredLink = EXPIRED_LINK.has(status)
  const retryable = status >= 500 || expiredLink || RETRYABLE_4XX.has(status)
  throw new DownloadError('http_status', `the video server answered HTTP ${status}`, {
    retryable, expiredLink, httpStatus: status, retryAfterMs: retryAfter(response.headers.get('retry-after'))
  })
}

/** Content-Length, when it describes the bytes we will read (not a compressed encoding of them). */
function declaredLength (response: Response): number | null {
  const encoding = response.headers.get('content-encoding')
  if (encoding && encoding !== 'identity') return null
  const header = response.headers.get('content-length')
  if (header === null || !/^\d+$/.test(header)) return null
  return Number(header)
}

function retryAfter (header: string | null): number | null {
  return header !== null && /^\d+$/.test(header) ? Number(header) * 1000 : null
}

/** Counts and hashes the bytes going through, and stops the stream the moment they pass maxBytes. */
class Meter extends Transform {
  bytes = 0
  readonly #hash = createHash('sha256')

  constructor (readonly maxBytes: number) {
    super()
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    if (this.bytes > this.maxBytes) {
      done(new DownloadError('too_large', `the video is larger than the ${this.maxBytes} bytes allowed`, { retryable: false }))
      return
    }
    this.#hash.update(chunk)
    done(null, chunk)
  }

  digest (): string {
    return this.#hash.digest('hex')
  }
}

function shortBody (bytes: number, declared: number, cause?: unknown): DownloadError {
  return new DownloadError('length_mismatch', `the body had ${bytes} bytes but Content-Length said ${declared}`, { retryable: true, cause })
}

/** A pipeline sink writing to an open file; its errors say "storage" so a full disk is not taken for a network failure. */
function writeTo (file: FileHandle): (source: AsyncIterable<Buffer>) => Promise<void> {
  return async (source) => {
    for await (const chunk of source) {
      // write() may take fewer bytes than asked (a signal, a nearly full disk): finish the chunk
      for (let offset = 0; offset < chunk.length;) {
        const { bytesWritten } = await storage(() => file.write(chunk, offset))
        offset += bytesWritten
      }
    }
  }
}

/** Makes the rename itself durable: without it a power cut may bring back the directory without the new entry. */
async function syncDirectory (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

async function storage<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw storageError(err)
  }
}

// A full disk or a permission may be fixed by an operator: worth another try later.
function storageError (err: unknown): DownloadError {
  return new DownloadError('storage', `could not write the video: ${(err as Error).message}`, { retryable: true, cause: err })
}

function asDownloadError (err: unknown, signal: AbortSignal, declared: number | null, bytes: number): DownloadError {
  if (err instanceof DownloadError) return err
  if (signal.aborted) {
    if (signal.reason instanceof DownloadError) return signal.reason
    return new DownloadError('aborted', 'the download was aborted', { retryable: true, cause: err })
  }
  // undici reports a body cut short as "terminated": with a Content-Length we can say exactly what went wrong
  if (declared !== null && bytes < declared) return shortBody(bytes, declared, err)
  return new DownloadError('network', `the video download failed: ${(err as Error).message}`, { retryable: true, cause: err })
}
