// Waiter fan-out: 1,000 long-polls, then 1,000 event streams, on one processing task; one push `success` on its callback
// URL releases them all. Measured: from sending the push until the last waiter has its answer (its status event).
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { seedPushTasks, type PushTarget } from './fill.js'
import { pushRequest, service, type BenchContext } from './scenarios.js'
import { BENCH_API_TOKEN, withServer, type ServerProcess } from './servers.js'
import { median } from './stats.js'

export const WAITER_KINDS = ['long-poll', 'event stream'] as const
export type WaiterKind = typeof WAITER_KINDS[number]

export type WaiterRound = { kind: WaiterKind, waiters: number, answered: number, releaseMs: number, pushStatus: number, warmup: boolean }
export type WaitersResult = {
  waiters: number
  /** Median release time per kind over the rounds after the warm-up ones, in ms. */
  releaseMs: Record<WaiterKind, number>
  /** Waiters not answered within RELEASE_TIMEOUT_MS, refused, or answered before the push, plus pushes not answered 200. */
  failures: number
  peakRssBytes: number
  rounds: WaiterRound[]
}

// Raw sockets, not node:http: parsing 1,000 answers in the bench process would add its own milliseconds to the measure.
// Connections opened at once: below the listen backlog (511), so no SYN is dropped and retried a second later.
const OPEN_BATCH = 100
// Waiters that are not all open by then point at a refusal (429 too_many_waiters) or a stuck service.
const OPEN_TIMEOUT_MS = 30_000
// Long-polls say nothing until released: they count as open once the service has stopped working on them, i.e. its
// CPU time grows by less than one clock tick (10 ms) over this interval.
const IDLE_SAMPLE_MS = 100
// One push must release everyone long before this; a waiter still silent then counts as a failure.
const RELEASE_TIMEOUT_MS = 10_000
// The service answers a long-poll after this at the latest; far beyond the bench's few seconds.
const WAIT_S = 60

type Waiter = { socket: Socket, text: string, open: boolean, answeredAt: number | null, early: boolean }

export async function waiterFanout (ctx: BenchContext): Promise<WaitersResult> {
  const { waiters, waiterRounds, waiterWarmupRounds } = ctx.settings
  const total = waiterWarmupRounds + waiterRounds
  // A fresh processing task per round: a released task is finished and would answer every waiter at once.
  const targets = seedPushTasks(ctx.mainDb, total * WAITER_KINDS.length, ctx.nextSeedBatch())
  return await withServer(() => service(ctx), async (server) => {
    const rounds: WaiterRound[] = []
    for (let i = 0; i < total; i++) {
      const warmup = i < waiterWarmupRounds
      for (const kind of WAITER_KINDS) {
        const result = { ...await round(server, kind, targets[rounds.length]!, waiters), warmup }
        rounds.push(result)
        ctx.log(`waiters ${warmup ? 'warm-up' : `${i + 1 - waiterWarmupRounds}/${waiterRounds}`} ${kind}: ${result.answered}/${waiters} released in ${result.releaseMs.toFixed(1)} ms`)
      }
    }
    const counted = (kind: WaiterKind) => rounds.filter((r) => r.kind === kind && !r.warmup).map((r) => r.releaseMs)
    const releaseMs = Object.fromEntries(WAITER_KINDS.map((kind) => [kind, median(counted(kind))])) as Record<WaiterKind, number>
    const failures = rounds.reduce((sum, r) => sum + (r.waiters - r.answered) + (r.pushStatus === 200 ? 0 : 1), 0)
    return { waiters, releaseMs, failures, peakRssBytes: server.peakRssBytes(), rounds }
  })
}

async function round (server: ServerProcess, kind: WaiterKind, target: PushTarget, count: number): Promise<Omit<WaiterRound, 'warmup'>> {
  const { hostname, port } = new URL(server.url)
  const path = kind === 'long-poll' ? `/v1/tasks/${target.taskId}?wait=${WAIT_S}&status=processing` : `/v1/tasks/${target.taskId}/events`
  const head = `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${BENCH_API_TOKEN}\r\n` +
    (kind === 'event stream' ? 'Accept: text/event-stream\r\n' : '') + '\r\n'
  // The release each kind waits for: the long-poll's body with the new status, the stream's `success` event.
  const released = kind === 'long-poll' ? '"status":"success"' : 'id: success'
  const list: Waiter[] = []
  let pushed = false
  try {
    for (let i = 0; i < count; i += OPEN_BATCH) {
      await Promise.all(Array.from({ length: Math.min(OPEN_BATCH, count - i) }, () => new Promise<void>((resolve, reject) => {
        const waiter: Waiter = { socket: connect(Number(port), hostname), text: '', open: false, answeredAt: null, early: false }
        list.push(waiter)
        waiter.socket.setNoDelay(true)
        waiter.socket.once('error', reject)
        waiter.socket.on('data', (chunk: Buffer) => {
          waiter.text += chunk.toString()
          if (!pushed) waiter.early ||= kind === 'long-poll' || !waiter.text.startsWith('HTTP/1.1 200')
          if (!waiter.open && kind === 'event stream') waiter.open = waiter.text.includes('id: processing')
          if (pushed && waiter.answeredAt === null && waiter.text.includes(released)) waiter.answeredAt = performance.now()
        })
        waiter.socket.write(head, () => resolve())
      })))
    }
    const deadline = Date.now() + OPEN_TIMEOUT_MS
    // Checked after each idle sample (which also lets the sockets' data in): every stream has its first event, or the
    // service is done with every long-poll.
    while (!(await idle(server) && list.every((w) => w.open || kind === 'long-poll'))) {
      const early = list.find((w) => w.early)
      if (early || Date.now() > deadline) throw new Error(`${kind}s: ${list.filter((w) => !w.open).length} of ${count} not open; one answered: ${JSON.stringify(early?.text ?? null)}`)
    }
    pushed = true
    const sentAt = performance.now()
    const pushStatus = await push(server.url, pushRequest(target, 'success'))
    const until = Date.now() + RELEASE_TIMEOUT_MS
    while (list.some((w) => w.answeredAt === null) && Date.now() < until) await sleep(1)
    const times = list.flatMap((w) => w.answeredAt === null ? [] : [w.answeredAt])
    return { kind, waiters: count, answered: times.length, releaseMs: times.length > 0 ? Math.max(...times) - sentAt : Number.NaN, pushStatus }
  } finally {
    for (const waiter of list) waiter.socket.destroy()
  }
}

/** True when the service used less than one clock tick of CPU over IDLE_SAMPLE_MS: it has handled every request sent. */
async function idle (server: ServerProcess): Promise<boolean> {
  const before = server.cpuSeconds()
  await sleep(IDLE_SAMPLE_MS)
  return server.cpuSeconds() - before < 0.01
}

function push (url: string, { path, body }: { path: string, body?: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.once('error', reject)
    req.end(body)
  })
}
