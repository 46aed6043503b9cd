// The bench on PostgreSQL: two replicas of the service on one throwaway cluster, each under half of the load, and
// where the time goes (statements, transactions and WAL fsyncs per request, server time, the replicas' group commits).
import { availableParallelism } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { APPLICATION_NAME } from '../src/db/postgres/pool.js'
import { loadConfig } from '../src/config.js'
import { startScratchPostgres, type PostgresCluster } from '../test/postgres-cluster.js'
import { runLoad, type LoadResult, type LoadSpec } from './load.js'
import { copyFilledTasks } from './postgres-fill.js'
import type { BenchContext, RunResult } from './scenarios.js'
import { groupCommitsOf, startService, type GroupCommits, type ServerProcess } from './servers.js'

export const REPLICAS = 2
const US_PER_S = 1_000_000
// Two replicas with the service's default pool each, their LISTEN connections, the bench's own pool: room to spare.
const MAX_CONNECTIONS = 60
// pg_stat_statements counts every statement the replicas send (calls) and the server's time on them.
const SERVER_SETTINGS = { shared_preload_libraries: "'pg_stat_statements'", max_connections: String(MAX_CONNECTIONS) }

// How often the replicas' connections in use are counted during a load (pg_stat_activity): fine enough to see a
// pool that is full, cheap enough to cost the server nothing.
const SAMPLE_MS = 50
// Each replica's pool: the service's default DATABASE_POOL_SIZE, which the bench does not change.
const POOL_SIZE = loadConfig({}).DATABASE_POOL_SIZE
// A stopped replica's backends exit a moment after its pool closed their connections; then their statistics are in.
const BACKEND_EXIT_MS = 500

export type PostgresBench = { databaseUrl: string, pool: pg.Pool, tasks: number, stop: () => Promise<void> }

/** What one measured load cost on PostgreSQL's side, per answered request (both replicas together). */
export type PostgresCost = {
  statementsPerRequest: number
  transactionsPerRequest: number
  walSyncsPerRequest: number
  /** The server's execution time of those statements (pg_stat_statements' total_exec_time), in µs. */
  serverUsPerRequest: number
  /** The replicas' group commits of status changes during the load: how many, their mean size and duration. */
  groupCommits: number
  requestsPerGroupCommit: number
  groupCommitMs: number
  /**
   * The replicas' pool connections busy on the server (in a statement or a transaction), sampled during the load:
   * the mean and the most over both replicas, against REPLICAS × the pool size. Far below it, no request waited for
   * a connection.
   */
  connectionsBusy: { mean: number, max: number, of: number }
}

let shared: Promise<PostgresBench> | undefined

/** The cluster of this bench run, started on first use with the main database's tasks copied in; one per run. */
export function postgresBench (ctx: BenchContext): Promise<PostgresBench> {
  shared ??= (async () => {
    const cluster: PostgresCluster = await startScratchPostgres(SERVER_SETTINGS)
    try {
      const databaseUrl = await cluster.freshDatabase()
      const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 })
      await pool.query('CREATE EXTENSION pg_stat_statements')
      const started = performance.now()
      const tasks = await copyFilledTasks(ctx.mainDb, pool)
      ctx.log(`PostgreSQL: copied ${tasks.toLocaleString('en-US')} tasks in ${((performance.now() - started) / 1000).toFixed(1)} s`)
      return { databaseUrl, pool, tasks, stop: async () => { await pool.end(); await cluster.stop() } }
    } catch (err) {
      await cluster.stop()
      throw err
    }
  })()
  return shared
}

/** Stops the cluster if this run started one. */
export async function stopPostgresBench (): Promise<void> {
  if (shared) await (await shared).stop()
  shared = undefined
}

/**
 * Starts REPLICAS services on the cluster, warms them up, runs `specs(urls)` (one load per replica, at once), and reads
 * what the load cost on both sides; `seen` gets every load's result, warm-up included. The database's counters are read
 * before the replicas start and after they stopped: a backend reports its statistics at most once a second while busy
 * and at the latest when it exits, so only then are they complete. They cover the warm-up too, and so does the count
 * of requests they are divided by.
 */
export async function measureReplicas (ctx: BenchContext, specs: (urls: string[]) => LoadSpec[], seen: (load: LoadResult) => void = () => {}): Promise<RunResult & { postgres: PostgresCost }> {
  const bench = await postgresBench(ctx)
  const before = await databaseCounters(bench.pool)
  const servers: ServerProcess[] = []
  let answered = 0
  const count = (load: LoadResult) => { answered += load.ok; seen(load) }
  let result: RunResult
  let commits: GroupCommits
  let busy: number[]
  try {
    for (let i = 0; i < REPLICAS; i++) {
      servers.push(await startService({ databasePath: ctx.mainDb, databaseUrl: bench.databaseUrl, logLevel: ctx.settings.logLevel, cwd: ctx.dir, cpuProfileDir: ctx.settings.cpuProfileDir, nodeFlags: ctx.settings.nodeFlags }))
    }
    const loads = specs(servers.map((server) => server.url))
    if (ctx.settings.warmupSeconds > 0) for (const load of await Promise.all(loads.map((spec) => runLoad(spec, ctx.settings.warmupSeconds)))) count(load)
    const cpuBefore = servers.map((server) => server.cpuSeconds())
    const sampling = sampleBusyConnections(bench.pool)
    const results = await Promise.all(loads.map((spec) => runLoad(spec, ctx.settings.runSeconds))).finally(() => sampling.stop())
    busy = await sampling.result
    for (const load of results) count(load)
    const load = mergeLoads(results)
    const cpuSeconds = servers.reduce((sum, server, i) => sum + server.cpuSeconds() - cpuBefore[i]!, 0)
    result = { load, peakRssBytes: Math.max(...servers.map((server) => server.peakRssBytes())), cpuUsPerRequest: cpuSeconds * US_PER_S / Math.max(1, load.ok) }
    commits = await groupCommitsOf(servers)
  } finally {
    await Promise.all(servers.map((server) => server.stop()))
  }
  await sleep(BACKEND_EXIT_MS)
  const after = await databaseCounters(bench.pool)
  const per = (delta: number) => delta / Math.max(1, answered)
  return {
    ...result,
    postgres: {
      statementsPerRequest: per(after.statements - before.statements),
      transactionsPerRequest: per(after.transactions - before.transactions),
      walSyncsPerRequest: per(after.walSyncs - before.walSyncs),
      serverUsPerRequest: per((after.serverMs - before.serverMs) * 1000),
      groupCommits: commits.count,
      requestsPerGroupCommit: commits.count > 0 ? answered / commits.count : 0,
      groupCommitMs: commits.count > 0 ? commits.seconds * 1000 / commits.count : 0,
      connectionsBusy: { mean: busy.reduce((sum, n) => sum + n, 0) / Math.max(1, busy.length), max: Math.max(0, ...busy), of: REPLICAS * POOL_SIZE }
    }
  }
}

/** Counts the service's pool connections busy on the server every SAMPLE_MS until stopped. */
function sampleBusyConnections (pool: pg.Pool): { stop: () => void, result: Promise<number[]> } {
  const state = { stopped: false }
  const result = (async () => {
    const samples: number[] = []
    while (!state.stopped) {
      const { rows } = await pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND state <> 'idle'", [APPLICATION_NAME])
      samples.push(Number(rows[0]!.n))
      await sleep(SAMPLE_MS)
    }
    return samples
  })()
  return { stop: () => { state.stopped = true }, result }
}

/** The load split over the replicas: each gets its share of the connections (at least one). */
export function splitConnections (connections: number): number {
  return Math.max(1, Math.round(connections / REPLICAS))
}

/** One line saying where the time of a PostgreSQL run went, for the bench's log and the report. */
export function describeCost (label: string, cost: PostgresCost): string {
  return `${label}: per request ${cost.statementsPerRequest.toFixed(2)} statements, ${cost.transactionsPerRequest.toFixed(2)} transactions, ` +
    `${cost.walSyncsPerRequest.toFixed(3)} WAL fsyncs, ${cost.serverUsPerRequest.toFixed(0)} µs of server execution; ` +
    `${cost.groupCommits} group commits of ${cost.requestsPerGroupCommit.toFixed(1)} requests, ${cost.groupCommitMs.toFixed(2)} ms each; ` +
    `pool connections busy ${cost.connectionsBusy.mean.toFixed(1)} on average, at most ${cost.connectionsBusy.max} of ${cost.connectionsBusy.of} ` +
    `(${availableParallelism()} cores shared by the load, both replicas and PostgreSQL)`
}

type Counters = { statements: number, serverMs: number, transactions: number, walSyncs: number }

async function databaseCounters (pool: pg.Pool): Promise<Counters> {
  const { rows: [database] } = await pool.query<{ statements: string, server_ms: string, transactions: string }>(`
    SELECT (SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements WHERE dbid = d.oid) AS statements,
           (SELECT COALESCE(sum(total_exec_time), 0) FROM pg_stat_statements WHERE dbid = d.oid) AS server_ms,
           (SELECT xact_commit FROM pg_stat_database WHERE datid = d.oid) AS transactions
    FROM pg_database d WHERE d.datname = current_database()`)
  // Cluster-wide (WAL is shared), so the bench's own reads count too: a handful against thousands of requests.
  const { rows: [wal] } = await pool.query<{ wal_sync: string }>('SELECT wal_sync FROM pg_stat_wal')
  return { statements: Number(database!.statements), serverMs: Number(database!.server_ms), transactions: Number(database!.transactions), walSyncs: Number(wal!.wal_sync) }
}

/** Loads that ran at once, as one: counts add up; latency percentiles are the worse replica's (they cannot be merged). */
function mergeLoads (loads: LoadResult[]): LoadResult {
  const ok = loads.reduce((sum, load) => sum + load.ok, 0)
  const refusals: Record<string, number> = {}
  for (const load of loads) for (const [code, n] of Object.entries(load.refusals)) refusals[code] = (refusals[code] ?? 0) + n
  const worst = (pick: (load: LoadResult) => number) => Math.max(...loads.map(pick))
  return {
    seconds: worst((load) => load.seconds),
    requests: loads.reduce((sum, load) => sum + load.requests, 0),
    ok,
    rps: loads.reduce((sum, load) => sum + load.rps, 0),
    non2xx: loads.reduce((sum, load) => sum + load.non2xx, 0),
    refusals,
    errors: loads.reduce((sum, load) => sum + load.errors, 0),
    timeouts: loads.reduce((sum, load) => sum + load.timeouts, 0),
    firstError: loads.find((load) => load.firstError !== null)?.firstError ?? null,
    latencyMs: {
      mean: loads.reduce((sum, load) => sum + load.latencyMs.mean * load.ok, 0) / Math.max(1, ok),
      p50: worst((load) => load.latencyMs.p50),
      p99: worst((load) => load.latencyMs.p99),
      p999: worst((load) => load.latencyMs.p999),
      max: worst((load) => load.latencyMs.max)
    }
  }
}
