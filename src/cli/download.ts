// Downloading a finished task's video: our archive or the provider's link, streamed to a .part file, then renamed.
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ApiClient } from './client.js'
import { apiError } from './client.js'
import { CliError, EXIT } from './exit-codes.js'
import type { Output } from './output.js'

// The whole transfer may take this long (a large video on a slow link); Ctrl-C stops it sooner.
const DOWNLOAD_TIMEOUT_MS = 30 * 60_000

export type Downloaded = { path: string, bytes: number, sha256: string, content_type: string | null }

export async function downloadVideo (client: ApiClient, id: string, path: string, out: Output, signal: AbortSignal): Promise<Downloaded> {
  // Our route answers our archived copy, or a 302 to the provider's signed URL: that one gets no bearer token.
  let res = await client.raw('GET', `/v1/tasks/${encodeURIComponent(id)}/video`, { redirect: 'manual', timeoutMs: DOWNLOAD_TIMEOUT_MS, signal })
  if (res.status >= 300 && res.status < 400) {
    const location = res.headers.get('location')
    await res.body?.cancel()
    if (location === null) throw new CliError(EXIT.apiError, `the service redirected the download of ${id} without a Location`, { code: 'bad_response' })
    const target = new URL(location, client.baseUrl).href
    try {
      res = await fetch(target, { signal: AbortSignal.any([signal, AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS)]) })
    } catch (err) {
      if (signal.aborted) throw err
      throw new CliError(EXIT.unreachable, `cannot download the video from the provider (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message})`, { code: 'download_failed' })
    }
    if (res.status >= 400) throw await apiError('GET', 'the provider\'s download link', res)
  }
  if (res.body === null) throw new CliError(EXIT.apiError, `the video of ${id} came with no body`, { code: 'bad_response' })
  const length = Number(res.headers.get('content-length'))
  const total = Number.isInteger(length) && length > 0 ? length : null
  const progress = out.download(path, total)
  const hash = createHash('sha256')
  let bytes = 0
  const meter = new Transform({
    transform (chunk: Buffer, _enc, callback) {
      bytes += chunk.length
      hash.update(chunk)
      progress.advance(chunk.length)
      callback(null, chunk)
    }
  })
  const part = `${path}.part`
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), meter, createWriteStream(part), { signal })
    if (total !== null && bytes !== total) throw new CliError(EXIT.unreachable, `the download of ${id} stopped at ${bytes} of ${total} bytes`, { code: 'download_incomplete' })
    await rename(part, path)
  } catch (err) {
    progress.stop(false)
    await rm(part, { force: true })
    if (err instanceof CliError || signal.aborted) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code !== undefined && code.startsWith('E') && code !== 'ECONNRESET') throw new CliError(EXIT.internal, `cannot write ${path}: ${(err as Error).message}`, { code: 'write_failed' })
    throw new CliError(EXIT.unreachable, `the download of ${id} failed: ${(err as Error).message}`, { code: 'download_failed' })
  }
  progress.stop(true)
  return { path, bytes, sha256: hash.digest('hex'), content_type: res.headers.get('content-type') }
}
