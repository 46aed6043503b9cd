// Following a task until it finishes: long-polls (wait, submit --wait) or the server-sent event stream (watch).
import { setTimeout as sleep } from 'node:timers/promises'
import type { ApiClient } from './client.js'
import { LONG_POLL_MARGIN_MS } from './client.js'
import { CliError, EXIT } from './exit-codes.js'
import { TERMINAL_STATUSES, type Task } from './output.js'

// Ask the service to hold each long-poll this long (it allows up to 60 s; shorter survives impatient proxies).
const LONG_POLL_S = 30
// A queued task's position moves without a status change: ask again this often to keep the live line's position fresh.
const QUEUED_POLL_S = 5
// A dropped event stream is reopened (with Last-Event-ID) this many times, this far apart, before giving up.
const SSE_RECONNECTS = 5
const SSE_RECONNECT_PAUSE_MS = 1000
// Streams are bounded by --timeout or Ctrl-C, not by a request timeout: 2^31-1 ms is the largest timer Node takes.
const NO_TIMEOUT_MS = 2 ** 31 - 1

export type FollowOptions = { timeoutMs?: number | undefined, signal: AbortSignal, onUpdate: (task: Task) => void }

/** Thrown (as an abort reason) by Ctrl-C; turned into the "resume with" message by whoever knows the task id. */
export class Interrupted extends Error {
  constructor () {
    super('interrupted')
    this.name = 'Interrupted'
  }
}

export function interruptedError (id: string): CliError {
  return new CliError(EXIT.interrupted, `stopped waiting; the task goes on (it is not cancelled). Resume with: s2v wait ${id}`, { code: 'interrupted', id, resume: `s2v wait ${id}` })
}

function timeoutError (id: string, timeoutMs: number): CliError {
  return new CliError(EXIT.timeout, `the task did not finish within ${Math.round(timeoutMs / 1000)} s; it goes on. Resume with: s2v wait ${id}`, { code: 'timeout', id, resume: `s2v wait ${id}` })
}

/** One signal for Ctrl-C and --timeout, and a translator of whichever fired into the right CliError. */
function deadline (id: string, opts: FollowOptions): { signal: AbortSignal, translate: (err: unknown) => unknown, done: () => void } {
  const timeout = new AbortController()
  const timer = opts.timeoutMs === undefined ? null : setTimeout(() => timeout.abort(timeoutError(id, opts.timeoutMs!)), opts.timeoutMs)
  return {
    signal: AbortSignal.any([opts.signal, timeout.signal]),
    translate: err => {
      if (opts.signal.aborted || err instanceof Interrupted) return interruptedError(id)
      if (timeout.signal.aborted) return timeout.signal.reason
      return err
    },
    done: () => { if (timer !== null) clearTimeout(timer) }
  }
}

export async function getTask (client: ApiClient, id: string, signal?: AbortSignal): Promise<Task> {
  return (await client.json<Task>('GET', `/v1/tasks/${encodeURIComponent(id)}`, { signal })).body
}

/** Long-polls until the task is success or failed; answers the final task. */
export async function waitForTask (client: ApiClient, id: string, opts: FollowOptions, first?: Task): Promise<Task> {
  const d = deadline(id, opts)
  try {
    let task = first ?? await getTask(client, id, d.signal)
    opts.onUpdate(task)
    while (!TERMINAL_STATUSES.has(task.status)) {
      const waitS = task.status === 'queued' ? QUEUED_POLL_S : LONG_POLL_S
      const res = await client.json<Task>('GET', `/v1/tasks/${encodeURIComponent(task.id)}`, {
        query: { wait: waitS, status: task.status },
        timeoutMs: waitS * 1000 + LONG_POLL_MARGIN_MS,
        signal: d.signal
      })
      task = res.body
      opts.onUpdate(task)
    }
    return task
  } catch (err) {
    throw d.translate(err)
  } finally {
    d.done()
  }
}

type SseEvent = { id: string | null, event: string, data: string }

/** Splits a text/event-stream into events (the WHATWG rules: fields, comments, multi-line data, CR/LF/CRLF). */
export async function * parseEventStream (chunks: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder()
  let buffer = ''
  let event: SseEvent = { id: null, event: 'message', data: '' }
  let hasData = false
  const flushLine = function * (line: string): Generator<SseEvent> {
    if (line === '') {
      if (hasData) yield { ...event, data: event.data.endsWith('\n') ? event.data.slice(0, -1) : event.data }
      event = { id: null, event: 'message', data: '' }
      hasData = false
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') {
      event.data += value + '\n'
      hasData = true
    } else if (field === 'event') {
      event.event = value
    } else if (field === 'id') {
      event.id = value
    }
  }
  for await (const chunk of chunks) {
    buffer += decoder.decode(chunk, { stream: true })
    let match: RegExpExecArray | null
    while ((match = /\r\n|\r|\n/.exec(buffer)) !== null) {
      // A lone CR at the end of a chunk may be the first half of CRLF: wait for more.
      if (match[0] === '\r' && match.index === buffer.length - 1) break
      const line = buffer.slice(0, match.index)
      buffer = buffer.slice(match.index + match[0].length)
      yield * flushLine(line)
    }
  }
  buffer += decoder.decode()
  if (buffer !== '') yield * flushLine(buffer)
  yield * flushLine('')
}

/** Follows GET /v1/tasks/:id/events until the final status; reconnects with Last-Event-ID when the stream drops. */
export async function watchTask (client: ApiClient, id: string, opts: FollowOptions): Promise<{ task: Task, events: Task[] }> {
  const d = deadline(id, opts)
  const events: Task[] = []
  let lastId: string | null = null
  let last: Task | null = null
  let drops = 0
  try {
    for (;;) {
      const res = await client.raw('GET', `/v1/tasks/${encodeURIComponent(id)}/events`, {
        headers: { accept: 'text/event-stream', ...(lastId === null ? {} : { 'last-event-id': lastId }) },
        timeoutMs: NO_TIMEOUT_MS,
        signal: d.signal
      })
      // 204: finished, and its final status was already seen on an earlier connection.
      if (res.status === 204) return { task: last ?? await getTask(client, id, d.signal), events }
      try {
        for await (const event of parseEventStream(res.body ?? emptyStream())) {
          if (event.event !== 'status') continue
          const task = JSON.parse(event.data) as Task
          lastId = event.id ?? task.status
          last = task
          events.push(task)
          opts.onUpdate(task)
        }
      } catch (err) {
        if (d.signal.aborted) throw err
        // The connection dropped mid-stream: count it and reconnect below.
      }
      if (last !== null && TERMINAL_STATUSES.has(last.status)) return { task: last, events }
      if (++drops > SSE_RECONNECTS) {
        throw new CliError(EXIT.unreachable, `the event stream of ${id} kept dropping (${SSE_RECONNECTS} reconnects); resume with: s2v watch ${id}`, { code: 'stream_dropped', id })
      }
      await sleep(SSE_RECONNECT_PAUSE_MS, undefined, { signal: d.signal })
    }
  } catch (err) {
    throw d.translate(err)
  } finally {
    d.done()
  }
}

async function * emptyStream (): AsyncGenerator<Uint8Array> {}
