// The server's own timeouts: trickling clients are cut off, idle keep-alive connections closed, long waits left alone.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { build, freePort, seedTask, taskId } from './helper.js'

const TIMEOUTS = { REQUEST_TIMEOUT_MS: '1500', HEADERS_TIMEOUT_MS: '1000', KEEP_ALIVE_TIMEOUT_MS: '1000' }
// What the issue allows past a timeout: Node looks for late requests once a second here (every 30 s by default).
const SLACK_MS = 2000

async function listening (t: Parameters<typeof build>[0], env: Record<string, string> = TIMEOUTS) {
  const app = await build(t, env)
  const port = await freePort()
  await app.listen({ port, host: '127.0.0.1' })
  return { app, port }
}

/** A raw connection that records what the server sent and when it closed the connection. */
function open (port: number) {
  const socket: Socket = connect({ port, host: '127.0.0.1' })
  const started = performance.now()
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { received += chunk })
  socket.on('error', () => {})
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now() - started)))
  return { socket, closed, received: () => received }
}

/** Writes one piece every `everyMs` until the socket closes (or `pieces` run out). */
function trickle (socket: Socket, piece: () => string, everyMs: number, pieces = Infinity): Promise<void> {
  return new Promise((resolve) => {
    let sent = 0
    const timer = setInterval(() => {
      if (socket.destroyed || sent >= pieces) {
        clearInterval(timer)
        return resolve()
      }
      socket.write(piece())
      sent += 1
    }, everyMs)
    socket.on('close', () => { clearInterval(timer); resolve() })
  })
}

t.test('a connection that trickles its body is answered 408 and closed within REQUEST_TIMEOUT_MS + 2 s', async (t) => {
  const { port } = await listening(t)
  const client = open(port)
  client.socket.write('POST /get_callback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"challenge":"')
  trickle(client.socket, () => 'a', 100) // ten bytes a second, for ever
  const ms = await client.closed
  t.comment(`trickling body closed after ${ms.toFixed(0)} ms (REQUEST_TIMEOUT_MS 1500)`)
  t.ok(ms >= 1400, 'not before the timeout')
  t.ok(ms <= 1500 + SLACK_MS, `closed ${ms.toFixed(0)} ms after it opened`)
  t.match(client.received(), /^HTTP\/1\.1 408 /, 'told why')
})

t.test('a connection that trickles its headers is closed within HEADERS_TIMEOUT_MS + 2 s', async (t) => {
  const { port } = await listening(t)
  const client = open(port)
  client.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n')
  let n = 0
  trickle(client.socket, () => `x-slow-${n++}: 1\r\n`, 100)
  const ms = await client.closed
  t.comment(`trickling headers closed after ${ms.toFixed(0)} ms (HEADERS_TIMEOUT_MS 1000)`)
  t.ok(ms >= 900 && ms <= 1000 + SLACK_MS, `closed ${ms.toFixed(0)} ms after it opened`)
  t.match(client.received(), /^HTTP\/1\.1 408 /)
})

t.test('a slow request that arrives within the timeout is served; an idle keep-alive connection is closed', async (t) => {
  const { port } = await listening(t)
  const client = open(port)
  const body = '{"challenge":"slow-but-steady"}'
  client.socket.write(`POST /get_callback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`)
  let i = 0
  await trickle(client.socket, () => body.slice(i, (i += 4)), 50, Math.ceil(body.length / 4)) // ~0.4 s in all
  const answered = performance.now()
  const ms = await client.closed
  t.match(client.received(), /^HTTP\/1\.1 200 [\s\S]*\{"challenge":"slow-but-steady"\}$/, 'answered')
  const idle = performance.now() - answered
  t.comment(`idle keep-alive connection closed ${idle.toFixed(0)} ms after its answer (KEEP_ALIVE_TIMEOUT_MS 1000)`)
  t.ok(idle >= 800 && idle <= 1000 + SLACK_MS, `the idle connection closed after ${idle.toFixed(0)} ms`)
  t.ok(ms > 0)
})

t.test('a long-poll longer than REQUEST_TIMEOUT_MS is not cut: the timeout is for receiving the request', async (t) => {
  const { app, port } = await listening(t)
  const { id } = await seedTask(app.taskStore, { task_id: taskId() })
  const started = performance.now()
  const res = await fetch(`http://127.0.0.1:${port}/v1/tasks/${id}?wait=3&status=processing`)
  const ms = performance.now() - started
  t.equal(res.status, 200)
  t.equal(((await res.json()) as { status: string }).status, 'processing')
  t.ok(ms >= 2900, `waited the full 3 s (${ms.toFixed(0)} ms) with REQUEST_TIMEOUT_MS 1500`)
})

t.test('timeouts are configured, with defaults, and headers may not outlast the request', async (t) => {
  const { app } = await listening(t, {})
  t.equal(app.server.requestTimeout, 60_000, 'REQUEST_TIMEOUT_MS default: 60 s')
  t.equal(app.server.headersTimeout, 10_000)
  t.equal(app.server.keepAliveTimeout, 72_000)
  const { testConfig } = await import('./helper.js')
  t.throws(() => testConfig(t, { REQUEST_TIMEOUT_MS: '5000', HEADERS_TIMEOUT_MS: '6000' }), /HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS/)
  t.throws(() => testConfig(t, { REQUEST_TIMEOUT_MS: '10' }), /REQUEST_TIMEOUT_MS/)
})
