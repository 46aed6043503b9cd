// The video downloader against a local HTTP server: bytes, hash, atomic rename, limits, failures and clean-up.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DownloadError, downloadVideo, removeStaleParts } from '../../src/services/video-download.js'
import { freePort, rejectionOf, tempDir } from '../helper.js'
import { waitUntil } from '../fixtures/webhook-consumer.js'

type Test = { teardown: (fn: () => unknown) => void }
type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>

const CHUNK = 16 * 1024

async function serve (t: Test, handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    const handled = handler(req, res)
    if (handled instanceof Promise) handled.catch((err: Error) => res.destroy(err))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/video.mp4`
}

/** Writes the body in chunks with a pause after each, as a slow CDN would. */
async function slowly (res: ServerResponse, body: Buffer, pauseMs: number): Promise<void> {
  for (let offset = 0; offset < body.length; offset += CHUNK) {
    if (res.destroyed) return
    res.write(body.subarray(offset, offset + CHUNK))
    await sleep(pauseMs)
  }
  res.end()
}

const failure = (promise: Promise<unknown>): Promise<DownloadError> => rejectionOf(promise, DownloadError)

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

t.test('a slow download lands with the right bytes and sha256, and never shows a partial file under its final name', async (t) => {
  const body = randomBytes(8 * CHUNK + 123)
  let acceptEncoding: string | undefined
  const url = await serve(t, async (req, res) => {
    acceptEncoding = req.headers['accept-encoding']
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': body.length })
    await slowly(res, body, 25)
  })
  const dir = join(tempDir(t), 'videos', 'nested')
  const finalPath = join(dir, 'task-1.mp4')

  const watch = { on: true }
  let sawPart = false
  const finalSizesSeen = new Set<number>()
  const watcher = (async () => {
    while (watch.on) {
      if (existsSync(dir) && readdirSync(dir).some((name) => name.endsWith('.part'))) sawPart = true
      if (existsSync(finalPath)) finalSizesSeen.add(statSync(finalPath).size)
      await sleep(3)
    }
  })()
  const result = await downloadVideo({ url, dir, name: 'task-1', maxBytes: 1024 * 1024, timeoutMs: 5000 })
  watch.on = false
  await watcher

  t.same(result, { path: finalPath, bytes: body.length, sha256: sha256(body) })
  t.ok(readFileSync(finalPath).equals(body), 'the file holds exactly the served bytes')
  t.ok(sawPart, 'the bytes went to a temporary file first')
  t.same([...finalSizesSeen].filter((size) => size !== body.length), [], 'the final name only ever showed the complete file')
  t.same(readdirSync(dir), ['task-1.mp4'], 'no temporary file is left')
  t.equal(acceptEncoding, 'identity', 'asks for the bytes as they are, so Content-Length can be checked')
})

t.test('a chunked body without Content-Length is accepted, and a second download replaces the first copy', async (t) => {
  let body = randomBytes(3 * CHUNK)
  const url = await serve(t, async (_req, res) => {
    res.writeHead(200, { 'content-type': 'video/mp4' })
    await slowly(res, body, 1)
  })
  const dir = tempDir(t)
  const first = await downloadVideo({ url, dir, name: 'v', maxBytes: 1024 * 1024, timeoutMs: 5000 })
  t.equal(first.sha256, sha256(body))
  body = randomBytes(CHUNK)
  const second = await downloadVideo({ url, dir, name: 'v', maxBytes: 1024 * 1024, timeoutMs: 5000 })
  t.same(second, { path: join(dir, 'v.mp4'), bytes: CHUNK, sha256: sha256(body) })
  t.ok(readFileSync(join(dir, 'v.mp4')).equals(body))
})

t.test('a declared Content-Length above maxBytes is refused before any byte is written', async (t) => {
  const url = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': 10_000 })
    res.end(Buffer.alloc(10_000))
  })
  const dir = tempDir(t)
  const err = await failure(downloadVideo({ url, dir, name: 'big', maxBytes: 5000, timeoutMs: 5000 }))
  t.equal(err.reason, 'too_large')
  t.equal(err.retryable, false, 'the same file will be too large next time')
  t.same(readdirSync(dir), [])
})

t.test('an undeclared body is cut off as soon as it passes maxBytes', async (t) => {
  let sent = 0
  let serverSawClose: () => void = () => {}
  const closed = new Promise<void>((resolve) => { serverSawClose = resolve })
  const url = await serve(t, async (_req, res) => {
    res.on('close', serverSawClose)
    res.writeHead(200, { 'content-type': 'video/mp4' })
    // endless: only the client's limit stops it
    while (!res.destroyed) {
      res.write(Buffer.alloc(CHUNK))
      sent += CHUNK
      await sleep(2)
    }
  })
  const dir = tempDir(t)
  const maxBytes = 4 * CHUNK
  const err = await failure(downloadVideo({ url, dir, name: 'endless', maxBytes, timeoutMs: 5000 }))
  t.equal(err.reason, 'too_large')
  t.equal(err.retryable, false)
  await closed
  t.ok(sent < 64 * CHUNK, `the connection was dropped early (${sent} bytes sent for a limit of ${maxBytes})`)
  t.same(readdirSync(dir), [], 'the temporary file is removed')
})

t.test('a body that ends before its Content-Length fails as a retryable length mismatch', async (t) => {
  const url = await serve(t, async (_req, res) => {
    res.writeHead(200, { 'content-length': 10 * CHUNK })
    res.write(Buffer.alloc(4 * CHUNK))
    await sleep(20)
    res.socket?.destroy()
  })
  const dir = tempDir(t)
  const err = await failure(downloadVideo({ url, dir, name: 'short', maxBytes: 1024 * 1024, timeoutMs: 5000 }))
  t.equal(err.reason, 'length_mismatch')
  t.equal(err.retryable, true)
  t.match(err.message, /Content-Length said 163840/)
  t.same(readdirSync(dir), [], 'neither a temporary nor a final file is left')
})

t.test('HTTP statuses map to retryable, final, or "fetch a fresh link"', async (t) => {
  const url = await serve(t, (req, res) => {
    const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status'))
    res.writeHead(status, status === 429 ? { 'retry-after': '7' } : {})
    res.end('nope')
  })
  const dir = tempDir(t)
  const cases: Array<[number, boolean, boolean]> = [
    // status, retryable, expiredLink
    [404, false, false],
    [400, false, false],
    [403, true, true],
    [410, true, true],
    [408, true, false],
    [429, true, false],
    [500, true, false],
    [503, true, false]
  ]
  for (const [status, retryable, expiredLink] of cases) {
    const err = await failure(downloadVideo({ url: `${url}?status=${status}`, dir, name: 'x', maxBytes: 1000, timeoutMs: 5000 }))
    t.same({ reason: err.reason, httpStatus: err.httpStatus, retryable: err.retryable, expiredLink: err.expiredLink },
      { reason: 'http_status', httpStatus: status, retryable, expiredLink }, `HTTP ${status}`)
    if (status === 429) t.equal(err.retryAfterMs, 7000, 'Retry-After is passed on')
  }
  t.same(readdirSync(dir), [], 'a refused download leaves no file')
})

t.test('a stalled download times out, retryably, and leaves nothing behind', async (t) => {
  const url = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': 10 * CHUNK })
    res.write(Buffer.alloc(CHUNK)) // then nothing more
  })
  const dir = tempDir(t)
  const started = Date.now()
  const err = await failure(downloadVideo({ url, dir, name: 'stalled', maxBytes: 1024 * 1024, timeoutMs: 150 }))
  t.equal(err.reason, 'timeout')
  t.equal(err.retryable, true)
  t.ok(Date.now() - started < 2000, 'gave up near the deadline')
  t.same(readdirSync(dir), [])
})

t.test('a server that never answers the headers times out too', async (t) => {
  const url = await serve(t, () => {})
  const err = await failure(downloadVideo({ url, dir: tempDir(t), name: 'silent', maxBytes: 1000, timeoutMs: 100 }))
  t.equal(err.reason, 'timeout')
})

t.test('the caller can abort a download (shutdown), and the temporary file goes', async (t) => {
  const url = await serve(t, async (_req, res) => {
    res.writeHead(200, { 'content-length': 100 * CHUNK })
    await slowly(res, Buffer.alloc(100 * CHUNK), 20)
  })
  const dir = tempDir(t)
  const controller = new AbortController()
  const download = downloadVideo({ url, dir, name: 'cancelled', maxBytes: 10 * 1024 * 1024, timeoutMs: 5000, signal: controller.signal })
  // The body takes 2 s; its temporary file appears once the headers are in (a few ms, more on a loaded machine).
  await waitUntil('the temporary file is there', () => readdirSync(dir).some((name) => name.endsWith('.part')))
  t.pass('a download was under way')
  controller.abort()
  const err = await failure(download)
  t.equal(err.reason, 'aborted')
  t.same(readdirSync(dir), [])
})

t.test('a refused connection is a retryable network failure', async (t) => {
  const port = await freePort()
  const err = await failure(downloadVideo({ url: `http://127.0.0.1:${port}/v.mp4`, dir: tempDir(t), name: 'n', maxBytes: 1000, timeoutMs: 5000 }))
  t.equal(err.reason, 'network')
  t.equal(err.retryable, true)
})

t.test('a directory that cannot be created is a storage failure', async (t) => {
  const url = await serve(t, (_req, res) => { res.end('data') })
  const notADir = join(tempDir(t), 'file')
  writeFileSync(notADir, 'x')
  const err = await failure(downloadVideo({ url, dir: join(notADir, 'videos'), name: 'n', maxBytes: 1000, timeoutMs: 5000 }))
  t.equal(err.reason, 'storage')
})

t.test('a name that is not one plain file name is a programming error', async (t) => {
  const dir = tempDir(t)
  for (const name of ['../escape', 'a/b', '.hidden', '', 'a..b']) {
    await t.rejects(downloadVideo({ url: 'http://127.0.0.1:1/', dir, name, maxBytes: 1, timeoutMs: 1 }), TypeError, JSON.stringify(name))
  }
})

t.test('removeStaleParts removes only old temporary files', async (t) => {
  const dir = tempDir(t)
  const old = (Date.now() - 60 * 60 * 1000) / 1000
  const files = {
    oldPart: '.task-1.0123456789ab.part',
    freshPart: '.task-2.ba9876543210.part',
    video: 'task-3.mp4',
    other: 'notes.part'
  }
  for (const name of Object.values(files)) writeFileSync(join(dir, name), 'x')
  for (const name of [files.oldPart, files.video, files.other]) utimesSync(join(dir, name), old, old)
  mkdirSync(join(dir, 'sub'))

  t.equal(removeStaleParts(dir, 10 * 60 * 1000), 1)
  t.same(readdirSync(dir).sort(), [files.freshPart, 'sub', files.video, files.other].sort())
  t.equal(removeStaleParts(dir, 0), 1, 'with no age limit the fresh one goes too')
  t.equal(removeStaleParts(join(dir, 'missing'), 0), 0, 'a directory that does not exist yet has nothing to clean')
})

t.test('every hop goes through the guard: http and private targets refused, redirects re-checked and bounded', async (t) => {
  const dir = tempDir(t)
  const body = randomBytes(1000)
  const hits: string[] = []
  const url = await serve(t, (req, res) => {
    hits.push(req.url!)
    const hop = Number(new URL(req.url!, 'http://x').searchParams.get('hop') ?? '0')
    if (req.url!.startsWith('/loop')) res.writeHead(302, { location: `/loop?hop=${hop + 1}` }).end()
    else if (req.url!.startsWith('/to-metadata')) res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data' }).end()
    else if (req.url!.startsWith('/to-video')) res.writeHead(301, { location: '/video.mp4' }).end()
    else res.writeHead(200, { 'content-length': String(body.length) }).end(body)
  })
  const base = new URL(url).origin
  const { assessUrl } = await import('../../src/services/notifications/url-guard.js')
  const strict = (candidate: string) => assessUrl(candidate, { allowPrivate: false, name: 'the video URL', httpsOnly: true, setting: 'VIDEO_ALLOW_PRIVATE' })
  // Lets our loopback test server through, and judges every other target as production would.
  const loopbackOnly = async (candidate: string) => candidate.startsWith(base) ? { ok: true as const } : await strict(candidate)

  const plain = await failure(downloadVideo({ url, dir, name: 'a', maxBytes: 10_000, timeoutMs: 5000, guard: strict }))
  t.equal(plain.reason, 'refused')
  t.match(plain.message, /https/)
  t.notOk(plain.retryable)
  const privateHttps = await failure(downloadVideo({ url: 'https://127.0.0.1:1/v.mp4', dir, name: 'a', maxBytes: 10_000, timeoutMs: 5000, guard: strict }))
  t.equal(privateHttps.reason, 'refused')
  t.match(privateHttps.message, /127\.0\.0\.1.*non-public/)
  const compatible = await failure(downloadVideo({ url: 'https://[::7f00:1]/v.mp4', dir, name: 'a', maxBytes: 10_000, timeoutMs: 5000, guard: strict }))
  t.equal(compatible.reason, 'refused', 'an IPv4-compatible IPv6 address (::/96) too')
  t.same(hits, [], 'nothing was fetched')

  const redirected = await failure(downloadVideo({ url: `${base}/to-metadata`, dir, name: 'a', maxBytes: 10_000, timeoutMs: 5000, guard: loopbackOnly }))
  t.equal(redirected.reason, 'refused', 'a redirect to the metadata address is checked before it is followed')
  t.match(redirected.message, /redirect/)
  const loop = await failure(downloadVideo({ url: `${base}/loop`, dir, name: 'a', maxBytes: 10_000, timeoutMs: 5000, guard: loopbackOnly }))
  t.equal(loop.reason, 'network')
  t.match(loop.message, /more than 5 redirects/)
  t.equal(hits.filter((hit) => hit.startsWith('/loop')).length, 6, 'the first request and five redirects, no more')

  const fine = await downloadVideo({ url: `${base}/to-video`, dir, name: 'b', maxBytes: 10_000, timeoutMs: 5000, guard: loopbackOnly })
  t.equal(fine.bytes, body.length, 'an allowed redirect is followed')
  t.same(readFileSync(fine.path), body)
})
