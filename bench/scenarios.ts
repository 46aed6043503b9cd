// The bench scenarios: which server runs, on which database, under which load; each run starts and stops its own processes.
import { randomBytes, randomUUID } from 'node:crypto'
import { runLoad, type LoadResult, type LoadSpec, type Request } from './load.js'
import { join } from 'node:path'
import { countPushEvents, filledTaskId, seedPushTasks, unseededPushTargets, type PushTarget } from './fill.js'
import type { LookupSample } from './lookup-sample.js'
import { describeCost, measureReplicas, postgresBench, REPLICAS, splitConnections, type PostgresCost } from './postgres.js'
import { countPostgresPushEvents, seedPostgresPushTasks } from './postgres-fill.js'
import { BENCH_API_TOKEN, groupCommitsOf, startBaseline, startFakeMiniMax, startService, withServer, type GroupCommits, type ServerProcess } from './servers.js'
import type { Settings } from './settings.js'

export type BenchContext = {
  settings: Settings
  /** Scratch folder: databases, and the working directory of every child. */
  dir: string
  mainDb: string
  log: (line: string) => void
  /** A new number for each push seeding, so seeded task_ids never repeat. */
  nextSeedBatch: () => number
  /** The service's answers for the in-memory lookup baseline; set before the scenarios run when that baseline is selected. */
  lookupSample?: LookupSample
}

export type RunResult = {
  load: LoadResult
  peakRssBytes: number
  /** Server CPU time per answered request during the measured load, in microseconds: what a request costs, whoever is busy. */
  cpuUsPerRequest: number
  /** Loads that ran alongside the measured one (the saturating pushes and lookups). */
  alongside?: Record<string, LoadResult>
  /** Pushes answered 2xx (warm-up included) and pushes in the database afterwards: never fewer (a few more were in flight). */
  durability?: { answered: number, recorded: number }
  /** On PostgreSQL: what the load cost on the database's side (bench/postgres.ts). */
  postgres?: PostgresCost
  /** Pushes on SQLite: the service's group commits (warm-up included, like `durability.answered`). */
  groupCommits?: GroupCommits
}

export const SCENARIO_KEYS = [
  'baseline', 'baseline_push', 'baseline_lookup', 'challenge', 'push', 'push_normal', 'lookup', 'submit', 'challenge_saturated',
  'pg_challenge', 'pg_push', 'pg_lookup'
] as const
/** The scenarios on PostgreSQL (two replicas on a throwaway cluster): they need PostgreSQL's server installed. */
export const isPostgres = (key: ScenarioKey): boolean => key.startsWith('pg_')
export type ScenarioKey = typeof SCENARIO_KEYS[number]
/** The baselines: every ratio is to one of them, and they run whenever a scenario compared with them does. */
export const isBaseline = (key: ScenarioKey): boolean => key.startsWith('baseline')

export type Scenario = {
  key: ScenarioKey
  label: string
  /** Besides bare Fastify ('baseline'), the baseline doing the same work naively or from memory, if any. */
  reference?: ScenarioKey
  run: (ctx: BenchContext) => Promise<RunResult>
}

const US_PER_S = 1_000_000
// Server log lines shown when a load had failures.
const LOG_LINES_ON_FAILURE = 5
const AUTH = { authorization: `Bearer ${BENCH_API_TOKEN}` }
// A token-shaped path segment: the challenge is answered before the token is even looked at.
const CHALLENGE_PATH = `/get_callback/${randomUUID()}.${randomBytes(32).toString('base64url')}`
const CHALLENGE: Request = { method: 'POST', path: CHALLENGE_PATH, body: JSON.stringify({ challenge: randomBytes(16).toString('hex') }) }
// Each seeded task is pushed processing (a duplicate after the submit's answer), then success (applied), then Success
// again (a duplicate in MiniMax's capitalised word): the mix a real task sees, every push one durable transaction.
const PUSH_CYCLE = ['processing', 'success', 'Success'] as const
const SUBMIT: Request = {
  method: 'POST',
  path: '/v1/video_generation',
  body: JSON.stringify({
    model: 'S2V-01',
    prompt: 'A girl waves at the camera in a sunny park, soft light',
    subject_reference: [{ type: 'character', image: ['https://cdn.example.com/faces/bench.jpg'] }],
    metadata: { ticket: 'BENCH-1' }
  })
}

export const SCENARIOS: readonly Scenario[] = [
  {
    key: 'baseline',
    label: 'baseline (bare Fastify)',
    run: (ctx) => measure(ctx, () => startBaseline('challenge', ctx.settings.logLevel, ctx.dir), (url) => fixed(ctx, url, CHALLENGE))
  },
  {
    key: 'baseline_push',
    label: 'baseline: naive push (FULL)',
    run: naivePushRun
  },
  {
    key: 'baseline_lookup',
    label: 'baseline: lookup from memory',
    run: lookupBaselineRun
  },
  {
    key: 'challenge',
    label: 'challenge echo',
    run: (ctx) => measure(ctx, () => service(ctx), (url) => fixed(ctx, url, CHALLENGE))
  },
  {
    key: 'push',
    label: 'status push (FULL)',
    reference: 'baseline_push',
    run: (ctx) => pushRun(ctx, 'FULL')
  },
  {
    key: 'push_normal',
    label: 'status push (NORMAL)',
    reference: 'baseline_push',
    run: (ctx) => pushRun(ctx, 'NORMAL')
  },
  {
    key: 'lookup',
    label: 'lookup',
    reference: 'baseline_lookup',
    run: (ctx) => lookupRun(ctx, ctx.mainDb, ctx.settings.rows)
  },
  {
    key: 'submit',
    label: 'submit (fake MiniMax)',
    // On a database of its own: the submits still queued when the load stops would otherwise be left in the main one,
    // and every later service there (MiniMax not configured) would fail them one by one in the background, during
    // the runs it measures (measured: the challenge's rounds after the first lost up to half their rate).
    run: (ctx) => withServer(() => startFakeMiniMax(ctx.dir), (fake) =>
      measure(ctx, () => service(ctx, { databasePath: join(ctx.dir, `submit-${ctx.nextSeedBatch()}.db`), minimax: { url: fake.url, apiKey: fake.apiKey } }),
        (url) => submitLoad(url, ctx.settings.connections)))
  },
  {
    key: 'challenge_saturated',
    label: 'challenge while saturated',
    run: saturatedRun
  },
  // The same loads on PostgreSQL, each compared with its SQLite run ("vs own baseline"): the same connections in all,
  // half on each replica.
  {
    key: 'pg_challenge',
    label: `challenge echo (PostgreSQL, ${REPLICAS} replicas)`,
    reference: 'challenge',
    run: (ctx) => logCost(ctx, 'pg_challenge', measureReplicas(ctx, (urls) => urls.map((url) => challengeLoad(ctx, url, splitConnections(ctx.settings.connections)))))
  },
  {
    key: 'pg_push',
    label: `status push (PostgreSQL, ${REPLICAS} replicas)`,
    reference: 'push',
    run: postgresPushRun
  },
  {
    key: 'pg_lookup',
    label: `lookup (PostgreSQL, ${REPLICAS} replicas)`,
    reference: 'lookup',
    // The filled tasks (the push runs' seeded ones were copied too, but lookups pick among the filled, as on SQLite).
    run: (ctx) => logCost(ctx, 'pg_lookup', measureReplicas(ctx, (urls) => urls.map((url) => lookupLoad(url, ctx.settings.rows, splitConnections(ctx.settings.connections)))))
  }
]

/** Pushes on PostgreSQL: each replica cycles over its own half of the seeded tasks, as MiniMax spreads them. */
async function postgresPushRun (ctx: BenchContext): Promise<RunResult> {
  const { pool } = await postgresBench(ctx)
  const batch = ctx.nextSeedBatch()
  const targets = await seedPostgresPushTasks(pool, ctx.settings.pushTasks, batch)
  let answered = 0
  const result = await logCost(ctx, 'pg_push', measureReplicas(ctx, (urls) => urls.map((url, replica) =>
    pushLoad(url, targets.filter((_, i) => i % urls.length === replica), splitConnections(ctx.settings.connections))), (load) => { answered += load.ok }))
  return { ...result, durability: { answered, recorded: await countPostgresPushEvents(pool, batch) } }
}

async function logCost (ctx: BenchContext, key: string, run: Promise<RunResult>): Promise<RunResult> {
  const result = await run
  if (result.postgres) ctx.log(describeCost(key, result.postgres))
  return result
}

/** Lookups of random filled tasks on a database of `rows` tasks (also the scaling check). */
export function lookupRun (ctx: BenchContext, databasePath: string, rows: number): Promise<RunResult> {
  return measure(ctx, () => service(ctx, { databasePath }), (url) => lookupLoad(url, rows, ctx.settings.connections))
}

export function lookupLoad (url: string, rows: number, connections: number): LoadSpec {
  return lookupsOf(url, () => filledTaskId(1 + Math.floor(Math.random() * rows)), connections)
}

/** Lookups of whichever ids `nextId` picks, with the bench's bearer token (the baselines get it too: the same request bytes). */
function lookupsOf (url: string, nextId: () => string, connections: number): LoadSpec {
  return { url, connections, headers: AUTH, next: () => ({ method: 'GET', path: `/v1/tasks/${nextId()}` }) }
}

/** One push of `status` on the target's own callback URL, in the body shape MiniMax sends. */
export function pushRequest (target: PushTarget, status: string): Request {
  const body = status === 'processing'
    ? { task_id: target.taskId, status }
    : { task_id: target.taskId, status, file_id: target.taskId.slice(3), base_resp: { status_code: 0, status_msg: 'success' } }
  return { method: 'POST', path: `/get_callback/${target.token}`, body: JSON.stringify(body) }
}

/** Pushes cycling over `targets` on their own callback URLs. */
export function pushLoad (url: string, targets: PushTarget[], connections: number): LoadSpec {
  let sent = 0
  return {
    url,
    connections,
    next: () => {
      const target = targets[sent % targets.length]!
      const status = PUSH_CYCLE[Math.floor(sent / targets.length) % PUSH_CYCLE.length]!
      sent += 1
      return pushRequest(target, status)
    }
  }
}

/** Creates with a small image URL and metadata, no Idempotency-Key: each one a new task and a MiniMax call. */
export function submitLoad (url: string, connections: number): LoadSpec {
  return { url, connections, headers: AUTH, next: () => SUBMIT }
}

export function challengeLoad (ctx: BenchContext, url: string, connections: number, rate?: number): LoadSpec {
  return { ...fixed(ctx, url, CHALLENGE), connections, ...(rate ? { rate } : {}) }
}

type ServiceChoice = { databasePath?: string, synchronous?: 'FULL' | 'NORMAL', minimax?: { url: string, apiKey: string } }

export function service (ctx: BenchContext, options: ServiceChoice = {}): Promise<ServerProcess> {
  return startService({
    databasePath: options.databasePath ?? ctx.mainDb,
    logLevel: ctx.settings.logLevel,
    cwd: ctx.dir,
    cpuProfileDir: ctx.settings.cpuProfileDir,
    nodeFlags: ctx.settings.nodeFlags,
    ...options
  })
}

async function pushRun (ctx: BenchContext, synchronous: 'FULL' | 'NORMAL'): Promise<RunResult> {
  const batch = ctx.nextSeedBatch()
  const targets = seedPushTasks(ctx.mainDb, ctx.settings.pushTasks, batch)
  let answered = 0
  const result = await measure(ctx, () => service(ctx, { synchronous }), (url) => pushLoad(url, targets, ctx.settings.connections), (load) => { answered += load.ok },
    async (server) => ({ groupCommits: await groupCommitsOf([server]) }))
  // Read after the service has stopped: a push answered 200 but not in the database would be a lost acknowledgement.
  return { ...result, durability: { answered, recorded: countPushEvents(ctx.mainDb, batch) } }
}

/** The naive receiver under the service's push load (same URLs, bodies and cycle), on a fresh database of its own. */
function naivePushRun (ctx: BenchContext): Promise<RunResult> {
  const batch = ctx.nextSeedBatch()
  const targets = unseededPushTargets(ctx.settings.pushTasks, batch)
  const env = { DATABASE_PATH: join(ctx.dir, `naive-push-${batch}.db`) }
  return measure(ctx, () => startBaseline('push', ctx.settings.logLevel, ctx.dir, env), (url) => pushLoad(url, targets, ctx.settings.connections))
}

/** Bare Fastify serving the sampled answers; first checks it sends the service's bytes, or the ratio would compare different work. */
function lookupBaselineRun (ctx: BenchContext): Promise<RunResult> {
  const sample = ctx.lookupSample
  if (!sample) throw new Error('the lookup baseline needs the lookup sample (bench/lookup-sample.ts) taken first')
  const start = async () => {
    const server = await startBaseline('lookup', ctx.settings.logLevel, ctx.dir, { LOOKUP_SAMPLE: sample.path })
    const first = sample.answers[0]!
    const text = await (await fetch(`${server.url}/v1/tasks/${first.id}`, { headers: AUTH })).text()
    if (text !== first.text) {
      await server.stop()
      throw new Error(`the lookup baseline's answer differs from the service's:\n${text}\n${first.text}`)
    }
    return server
  }
  const ids = sample.answers.map((answer) => answer.id)
  return measure(ctx, start, (url) => lookupsOf(url, () => ids[Math.floor(Math.random() * ids.length)]!, ctx.settings.connections))
}

async function saturatedRun (ctx: BenchContext): Promise<RunResult> {
  const { saturation, rows } = ctx.settings
  const targets = seedPushTasks(ctx.mainDb, ctx.settings.pushTasks, ctx.nextSeedBatch())
  return await withServer(() => service(ctx), async (server) => {
    const specs = [
      challengeLoad(ctx, server.url, saturation.probeConnections, saturation.probeRate),
      pushLoad(server.url, targets, saturation.pushConnections),
      lookupLoad(server.url, rows, saturation.lookupConnections)
    ]
    if (ctx.settings.warmupSeconds > 0) await Promise.all(specs.map((spec) => runLoad(spec, ctx.settings.warmupSeconds)))
    const cpuBefore = server.cpuSeconds()
    const [probe, push, lookup] = await Promise.all(specs.map((spec) => runLoad(spec, ctx.settings.runSeconds))) as [LoadResult, LoadResult, LoadResult]
    const cpuUsPerRequest = (server.cpuSeconds() - cpuBefore) * US_PER_S / (probe.ok + push.ok + lookup.ok)
    reportFailures(ctx, server, { probe, push, lookup })
    return { load: probe, peakRssBytes: server.peakRssBytes(), cpuUsPerRequest, alongside: { push, lookup } }
  })
}

/** Starts a server, warms it up, measures one load, reads its peak memory, stops it; `seen` gets both loads' results. */
function measure (ctx: BenchContext, start: () => Promise<ServerProcess>, load: (url: string) => LoadSpec, seen: (load: LoadResult) => void = () => {},
  inspect: (server: ServerProcess) => Promise<Partial<RunResult>> = async () => ({})): Promise<RunResult> {
  return withServer(start, async (server) => {
    const spec = load(server.url)
    // A fresh process: let V8 optimise first; these numbers are thrown away.
    if (ctx.settings.warmupSeconds > 0) seen(await runLoad(spec, ctx.settings.warmupSeconds))
    const cpuBefore = server.cpuSeconds()
    const result = await runLoad(spec, ctx.settings.runSeconds)
    const cpuUsPerRequest = (server.cpuSeconds() - cpuBefore) * US_PER_S / result.ok
    seen(result)
    reportFailures(ctx, server, { load: result })
    return { ...await inspect(server), load: result, peakRssBytes: server.peakRssBytes(), cpuUsPerRequest }
  })
}

/** A load that got anything but 2xx: say which, and show what the server logged, so the cause is on screen. */
export function reportFailures (ctx: BenchContext, server: ServerProcess, loads: Record<string, LoadResult>): void {
  for (const [name, load] of Object.entries(loads)) {
    if (load.non2xx + load.errors + load.timeouts === 0) continue
    ctx.log(`${server.name} ${name}: ${JSON.stringify({ refusals: load.refusals, errors: load.errors, timeouts: load.timeouts, firstError: load.firstError })}; ` +
      `its output ends with:\n${server.output().split('\n').slice(-LOG_LINES_ON_FAILURE).join('\n')}`)
  }
}

function fixed (ctx: BenchContext, url: string, request: Request): LoadSpec {
  return { url, connections: ctx.settings.connections, next: () => request }
}
