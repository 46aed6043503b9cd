// Bench servers: the service (dist/server.js), the three baselines and the fake MiniMax, each in its own child process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { get } from 'node:http'
import { connect, createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const ROOT = resolve(import.meta.dirname, '..')
const SERVICE_ENTRY = join(ROOT, 'dist', 'server.js')
// Plain JavaScript on the built code, like the service: bare Fastify echoing a challenge, the naive one-INSERT push
// receiver, and bare Fastify serving sampled lookup answers from memory.
const BASELINE_SCRIPTS = {
  challenge: join(ROOT, 'bench', 'baseline-server.mjs'),
  push: join(ROOT, 'bench', 'naive-push-server.mjs'),
  lookup: join(ROOT, 'bench', 'lookup-baseline-server.mjs')
}
export type BaselineKind = keyof typeof BASELINE_SCRIPTS
const FAKE_SCRIPT = join(ROOT, 'bench', 'fake-minimax-server.ts')
// The fake is TypeScript: loaded through tsx's hooks inside the same node process (one pid to watch).
const TSX_LOADER = import.meta.resolve('tsx')

/** The bearer token the bench sends to the internal routes: production runs with API_TOKENS set. */
export const BENCH_API_TOKEN = 'bench-token'
/** Its caller name (API_TOKENS as name:token): the filled tasks belong to it, or lookups would answer 404 (isolation). */
export const BENCH_CALLER = 'bench'
const FAKE_API_KEY = 'bench-minimax-key'
// A server that is not listening after this long is broken, not slow.
const START_TIMEOUT_MS = 20_000
// How often to try the port (or the readiness route) while a server starts: also the resolution of the ready time.
const START_POLL_MS = 5
// The service is ready when this answers 200: the process is up and the database answers (src/routes/health.ts).
const SERVICE_READY_PATH = '/readyz'
// After SIGTERM the service finishes in-flight requests (none: the load has stopped); then it is killed.
const STOP_TIMEOUT_MS = 5_000
// The service's own grace period on SIGTERM, well inside STOP_TIMEOUT_MS.
const SERVICE_GRACE_MS = 2_000
// Output kept from each child, shown when it fails.
const OUTPUT_TAIL_CHARS = 4_000
// Every rate limit far above what the load can reach, so they count but never refuse.
const UNLIMITED = String(1_000_000_000)
// Waiter caps far above the fan-out's 1,000 waiters of one caller (the defaults are 100 per caller, 10,000 in all).
const WAITER_CAP = String(100_000)

/**
 * How `npm start` (package.json) and the image (Dockerfile) run the service, so the bench measures what production
 * runs; test/container.test.ts checks that both still spell out these. Why each is set: README, "Start-up and memory".
 */
export const PRODUCTION_NODE_FLAGS = ['--max-semi-space-size=8']
export const PRODUCTION_ENV = { MALLOC_ARENA_MAX: '2' }

export type ServerProcess = {
  readonly name: string
  readonly url: string
  readonly pid: number
  /** From spawn until the server listened (the service: until GET /readyz answered 200), in ms. */
  readonly readyMs: number
  /** VmHWM: the most resident memory the process has had since it started. */
  peakRssBytes (): number
  /** VmRSS: resident memory now. */
  rssBytes (): number
  /** CPU time (user + system) the process has used since it started, in seconds. */
  cpuSeconds (): number
  /** The end of what the process printed (its log lines at the bench's level). */
  output (): string
  stop (): Promise<void>
}

export type ServiceOptions = {
  databasePath: string
  /** PostgreSQL instead of the SQLite file (DATABASE_URL); replicas of one run share it. */
  databaseUrl?: string
  logLevel: string
  synchronous?: 'FULL' | 'NORMAL'
  minimax?: { url: string, apiKey: string }
  cwd: string
  /** Where node writes a CPU profile of each service process (--cpu-prof), if anywhere. */
  cpuProfileDir?: string | undefined
  /** Node flags before dist/server.js (--node-flags); unset: PRODUCTION_NODE_FLAGS, as `npm start` runs it. */
  nodeFlags?: string[] | undefined
  /** Variables over the production environment (PRODUCTION_ENV and the service's settings), for an A/B of one of them. */
  env?: Record<string, string> | undefined
}

const running = new Set<ChildProcess>()
// A bench that dies (error, Ctrl-C) must not leave servers behind.
process.once('exit', () => { for (const child of running) child.kill('SIGKILL') })

/** Rebuilds dist/ when it is missing or older than any file in src/, so the service under test is the current code. */
export function ensureBuilt (log: (line: string) => void): void {
  const built = existsSync(SERVICE_ENTRY) ? statSync(SERVICE_ENTRY).mtimeMs : 0
  if (built >= newestMtime(join(ROOT, 'src'))) return
  log('dist/ is missing or older than src/: running npm run build')
  const result = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
  if (result.status !== 0) throw new Error(`npm run build failed (exit ${result.status})`)
}

export async function startService (options: ServiceOptions): Promise<ServerProcess> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const profile = options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : []
  return await startChild('service', [...profile, ...(options.nodeFlags ?? PRODUCTION_NODE_FLAGS), SERVICE_ENTRY], port, url, options.cwd, SERVICE_READY_PATH, {
    ...PRODUCTION_ENV,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_BASE_URL: url,
    DATABASE_PATH: options.databasePath,
    DATABASE_SYNCHRONOUS: options.synchronous ?? 'FULL',
    LOG_LEVEL: options.logLevel,
    API_TOKENS: `${BENCH_CALLER}:${BENCH_API_TOKEN}`,
    SUBMIT_RATE_LIMIT: UNLIMITED,
    READ_RATE_LIMIT: UNLIMITED,
    CALLBACK_RATE_LIMIT: UNLIMITED,
    // The bench measures our own cost of a submit, not MiniMax's 5 creates a minute (the fake has no limit).
    MINIMAX_SUBMIT_RPM: UNLIMITED,
    // Creates still go out one at a time (one in flight per provider), ~50 a second against the fake: the submits the
    // load sends beyond that are queued (202), and a queue capped at its default 1,000 would turn them into 429s.
    MAX_QUEUED_PER_CALLER: UNLIMITED,
    MAX_WAITERS_PER_CALLER: WAITER_CAP,
    MAX_WAITERS: WAITER_CAP,
    SHUTDOWN_GRACE_MS: String(SERVICE_GRACE_MS),
    ...(options.minimax ? { MINIMAX_BASE_URL: options.minimax.url, MINIMAX_API_KEY: options.minimax.apiKey } : {}),
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...options.env
  })
}

/** A baseline; `env` carries what its kind needs (DATABASE_PATH for the naive push receiver, LOOKUP_SAMPLE for lookups). */
export async function startBaseline (kind: BaselineKind, logLevel: string, cwd: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await freePort()
  return await startChild(`${kind} baseline`, [BASELINE_SCRIPTS[kind]], port, `http://127.0.0.1:${port}`, cwd, null, {
    NODE_ENV: 'production', PORT: String(port), LOG_LEVEL: logLevel, ...env
  })
}

export async function startFakeMiniMax (cwd: string): Promise<ServerProcess & { apiKey: string }> {
  const port = await freePort()
  const server = await startChild('fake MiniMax', ['--import', TSX_LOADER, FAKE_SCRIPT], port, `http://127.0.0.1:${port}`, cwd, null, {
    NODE_ENV: 'production', PORT: String(port), FAKE_MINIMAX_API_KEY: FAKE_API_KEY
  })
  return Object.assign(server, { apiKey: FAKE_API_KEY })
}

/** Runs fn with a fresh server, stopped afterwards: each run's peak RSS belongs to that run alone. */
export async function withServer<S extends ServerProcess, T> (start: () => Promise<S>, fn: (server: S) => Promise<T>): Promise<T> {
  const server = await start()
  try {
    return await fn(server)
  } finally {
    await server.stop()
  }
}

/** Group commits of status changes: how many, and their time in all (commit and fsync). */
export type GroupCommits = { count: number, seconds: number }

/** The group commits of status changes the service processes made since they started, from their /metrics. */
export async function groupCommitsOf (servers: ServerProcess[]): Promise<GroupCommits> {
  let count = 0
  let seconds = 0
  for (const server of servers) {
    const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${BENCH_API_TOKEN}` } })).text()
    count += metric(text, 's2v_db_write_duration_seconds_count')
    seconds += metric(text, 's2v_db_write_duration_seconds_sum')
  }
  return { count, seconds }
}

function metric (text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)
  return match ? Number(match[1]) : 0
}

/** Reads one kB figure (VmHWM, VmRSS) of a process from /proc, in bytes. */
function procStatusBytes (pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

// Linux reports CPU times in clock ticks of 1/100 s (USER_HZ) on every architecture we run on.
const CLOCK_TICKS_PER_SECOND = 100

/** utime + stime from /proc/<pid>/stat (fields 14 and 15; the command name in field 2 may hold spaces, so count from its ')'). */
function procCpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
}

/** Spawns a server and waits until it listens or, with readyPath, until that path answers 200. */
async function startChild (name: string, args: string[], port: number, url: string, cwd: string, readyPath: string | null, env: Record<string, string>): Promise<ServerProcess> {
  const spawnedAt = performance.now()
  // A clean environment: only what we set, so a developer's shell or .env cannot change what is measured.
  const child = spawn(process.execPath, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  running.add(child)
  let output = ''
  const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => { running.delete(child); resolve() }))

  const deadline = Date.now() + START_TIMEOUT_MS
  while (!await (readyPath === null ? canConnect(port) : answersOk(`${url}${readyPath}`))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited during start-up (${child.exitCode ?? child.signalCode}):\n${output}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${name} did not listen on ${port} within ${START_TIMEOUT_MS} ms:\n${output}`)
    }
    await sleep(START_POLL_MS)
  }
  const readyMs = performance.now() - spawnedAt
  const pid = child.pid!
  return {
    name,
    url,
    pid,
    readyMs,
    peakRssBytes: () => procStatusBytes(pid, 'VmHWM'),
    rssBytes: () => procStatusBytes(pid, 'VmRSS'),
    output: () => output,
    cpuSeconds: () => procCpuSeconds(pid),
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} died during the run (${child.exitCode ?? child.signalCode}):\n${output}`)
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      await exited
      clearTimeout(timer)
    }
  }
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

function canConnect (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

function answersOk (url: string): Promise<boolean> {
  return new Promise((resolve) => {
    get(url, { agent: false }, (res) => { res.resume(); resolve(res.statusCode === 200) }).once('error', () => resolve(false))
  })
}

function newestMtime (dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs)
  }
  return newest
}
