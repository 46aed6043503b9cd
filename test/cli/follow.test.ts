// The event-stream parser behind `s2v watch`, and --timeout / Ctrl-C while long-polling a service that never changes.
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ApiClient } from '../../src/cli/client.js'
import { CliError, EXIT } from '../../src/cli/exit-codes.js'
import { Interrupted, parseEventStream, waitForTask } from '../../src/cli/follow.js'

async function collect (chunks: string[]): Promise<Array<{ id: string | null, event: string, data: string }>> {
  async function * source () { for (const c of chunks) yield Buffer.from(c) }
  const events = []
  for await (const e of parseEventStream(source())) events.push(e)
  return events
}

t.test('server-sent events: fields, comments, multi-line data, any line ending, any chunking', async t => {
  const stream = 'retry: 3000\n\n: keep-alive\n\nid: processing\nevent: status\ndata: {"a":1}\n\nid: success\r\nevent: status\r\ndata: line1\r\ndata: line2\r\n\r\ndata:no-space\n\n'
  const expected = [
    { id: 'processing', event: 'status', data: '{"a":1}' },
    { id: 'success', event: 'status', data: 'line1\nline2' },
    { id: null, event: 'message', data: 'no-space' }
  ]
  t.same(await collect([stream]), expected, 'in one chunk')
  t.same(await collect([...stream]), expected, 'one character at a time (a CRLF split across chunks)')
  t.same(await collect(['data: unterminated']), [{ id: null, event: 'message', data: 'unterminated' }], 'the last event without its blank line')
  t.same(await collect([': only comments\n\n']), [])
})

t.test('waiting: --timeout and Ctrl-C each end with their own exit code and a resume hint', async t => {
  const task = { id: 'abc', task_id: null, status: 'processing', provider: 'minimax', provider_status: null, error: null, created_at: new Date().toISOString(), updated_at: new Date().toISOString() }
  let polls = 0
  // A service whose task never changes: every long-poll is held until the client gives up.
  const server = createServer((req, res) => {
    if (req.url?.includes('wait=')) {
      polls++
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(task))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const client = new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, undefined)

  const updates: string[] = []
  const started = Date.now()
  const timedOut = await waitForTask(client, 'abc', { timeoutMs: 2000, signal: new AbortController().signal, onUpdate: t => updates.push(t.status) }).catch((e: unknown) => e)
  t.ok(timedOut instanceof CliError)
  t.match(timedOut, { exitCode: EXIT.timeout, details: { code: 'timeout', resume: 's2v wait abc' } })
  t.ok(Date.now() - started < 20_000, 'the timeout cuts the held long-poll (30 s) short')
  t.same(updates, ['processing'])
  t.equal(polls, 1)

  const ctrlC = new AbortController()
  setTimeout(() => ctrlC.abort(new Interrupted()), 200)
  const interrupted = await waitForTask(client, 'abc', { signal: ctrlC.signal, onUpdate: () => {} }).catch((e: unknown) => e)
  t.match(interrupted, { exitCode: EXIT.interrupted, details: { code: 'interrupted', resume: 's2v wait abc' } })
})
