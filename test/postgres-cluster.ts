// A throwaway PostgreSQL cluster for one test file: initdb into a temporary folder, started on 127.0.0.1, removed after.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { appendFileSync, chownSync, existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs'
import type { Socket } from 'node:net'
import { dirname, join } from 'node:path'
import pg from 'pg'
import type { Test } from 'tap'
import { openPool, type PoolOptions } from '../src/db/postgres/pool.js'
import { freePort, tempDir } from './helper.js'

export type PostgresCluster = {
  /** The superuser's URL of the cluster's postgres database. */
  url: string
  /** A new, empty database (t_<random>) on the cluster: one per test keeps tests apart at no cluster start's cost. */
  freshDatabase: () => Promise<string>
  stop: () => Promise<void>
}

const BINARIES = ['initdb', 'pg_ctl', 'postgres']
// Debian's packages put the server's programs here (pg_config --bindir may belong to libpq-dev alone).
const DEBIAN_ROOT = '/usr/lib/postgresql'
// A cluster start is checked this long before the test fails: a second or two on an idle machine, far more on a
// 2-core machine running other tests.
const START_TIMEOUT_S = 60
// A test's pools open connections only as queries need them (a few each), plus the admin client: room to spare, and
// less shared memory than the default 100.
const MAX_CONNECTIONS = 30
// The chosen free port may be taken by another process before the server binds it: pick another so many times.
const START_ATTEMPTS = 3
// Unprivileged user the cluster runs as when the tests run as root (PostgreSQL refuses to start as root).
const UNPRIVILEGED_USER = 'nobody'
const SUPERUSER = 'postgres'

/** The folder holding initdb, pg_ctl and postgres, or null when PostgreSQL's server is not installed. */
export function postgresBinDir (): string | null {
  const candidates: string[] = []
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
  } catch {}
  if (existsSync(DEBIAN_ROOT)) {
    // Newest major version first: 15 before 9.6.
    const versions = readdirSync(DEBIAN_ROOT)
    versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
    candidates.push(...versions.map((version) => join(DEBIAN_ROOT, version, 'bin')))
  }
  candidates.push(...(process.env.PATH ?? '').split(':').filter(Boolean))
  for (const dir of candidates) {
    // A PATH entry may hold symlinks to some of the programs (/usr/local/bin/initdb): the folder they point into is
    // the one holding them all, as pg_ctl itself assumes when it looks for postgres beside its own real path.
    const initdb = join(dir, 'initdb')
    if (!existsSync(initdb)) continue
    const real = dirname(realpathSync(initdb))
    if (BINARIES.every((name) => existsSync(join(real, name)))) return real
  }
  return null
}

/**
 * True when a cluster can be started. Otherwise the test is skipped with the reason, or fails when REQUIRE_POSTGRES=1
 * (what .ci/run sets, so CI never passes by skipping).
 */
export function havePostgres (t: Test, what: string): boolean {
  if (postgresBinDir() !== null) return true
  const message = `${what} skipped: PostgreSQL's server (initdb, pg_ctl) is not installed (apt-get install postgresql)`
  if (process.env.REQUIRE_POSTGRES === '1') t.fail(`${message}, and REQUIRE_POSTGRES=1 requires it`)
  else t.test(what, { skip: message }, () => {})
  return false
}

/**
 * Starts a cluster for this test file; it is stopped and its folder removed in t.teardown. Await it before the file's
 * first t.test: tap ends a file whose queued tests have all run while the top level still awaits, and the tests
 * registered after that await would silently not run.
 */
export async function startPostgres (t: Pick<Test, 'teardown'>, extraSettings: Record<string, string> = {}): Promise<PostgresCluster> {
  const bin = postgresBinDir()
  if (bin === null) throw new Error('PostgreSQL is not installed: call havePostgres(t) first')
  const root = tempDir(t)
  const asUser = unprivileged(root)
  const data = join(root, 'data')
  const log = join(root, 'server.log')
  await run(asUser, join(bin, 'initdb'), [
    '--pgdata', data, '--username', SUPERUSER, '--auth', 'trust', '--encoding', 'UTF8', '--no-locale',
    // initdb's own fsync of the new files only matters if the machine crashes before the cluster is thrown away.
    '--no-sync', '--no-instructions'
  ])
  const settings = {
    listen_addresses: "'127.0.0.1'",
    // Sockets in the temporary folder: the default (/var/run/postgresql) belongs to the system's cluster.
    unix_socket_directories: `'${root}'`,
    // Durable commits, as in production: tests that kill processes mid-write depend on them.
    fsync: 'on',
    synchronous_commit: 'on',
    max_connections: String(MAX_CONNECTIONS),
    // The bench's, e.g. shared_preload_libraries for pg_stat_statements.
    ...extraSettings
  }
  appendFileSync(join(data, 'postgresql.conf'), Object.entries(settings).map(([name, value]) => `${name} = ${value}\n`).join(''))

  const pgCtl = join(bin, 'pg_ctl')
  const dismissWatchdog = startWatchdog(asUser, pgCtl, data, root)
  const stop = async () => {
    // Nothing to stop when the start failed, or after an earlier stop (pg_ctl removes the pid file when it is down).
    if (existsSync(join(data, 'postmaster.pid'))) {
      // fast: disconnects the sessions still open and shuts down cleanly; the folder is removed right after.
      await run(asUser, pgCtl, ['stop', '--wait', '--mode', 'fast', '--pgdata', data])
    }
    dismissWatchdog()
  }
  // Registered after tempDir's removal, so it runs before it (tap runs teardowns last in, first out), and before the
  // start, so a server that came up too late for pg_ctl's wait is stopped too.
  t.teardown(stop)

  let port = 0
  for (let attempt = 1; ; attempt++) {
    port = await freePort()
    try {
      await run(asUser, pgCtl, ['start', '--wait', '--timeout', String(START_TIMEOUT_S), '--pgdata', data, '--log', log, '-o', `-p ${port}`])
      break
    } catch (err) {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : ''
      if (attempt >= START_ATTEMPTS || !/could not bind|already in use/i.test(tail)) {
        throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${tail}`, { cause: err })
      }
    }
  }
  const url = `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`
  const freshDatabase = async () => {
    const name = `t_${randomBytes(6).toString('hex')}`
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      await admin.query(`CREATE DATABASE ${name}`)
    } finally {
      await admin.end()
    }
    return `postgres://${SUPERUSER}@127.0.0.1:${port}/${name}`
  }
  return { url, freshDatabase, stop }
}

/**
 * Starts a process outside this one that stops the cluster and removes its folder if this process dies without its
 * teardowns (a test timeout's SIGKILL), so no server is left running: it waits on a pipe from us, which the kernel
 * closes when we exit. Returns the call that tells it all was cleaned up normally.
 */
function startWatchdog (asUser: string[], pgCtl: string, data: string, root: string): () => void {
  const script = 'read -r word; [ "$word" = done ] && exit 0; "$@" stop --mode immediate --pgdata "$PG_DATA" >/dev/null 2>&1; rm -rf "$PG_ROOT"'
  const child = spawn('sh', ['-c', script, 'postgres-watchdog', ...asUser, pgCtl], {
    // Its own process group, so a signal to ours (Ctrl-C, tap's kill) does not take it down before it has cleaned up.
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
    env: { ...process.env, PG_DATA: data, PG_ROOT: root }
  })
  // Neither the process nor the pipe keeps this one alive.
  child.unref()
  ;(child.stdin as unknown as Socket).unref()
  return () => { child.stdin.end('done\n') }
}

/** The command prefix that runs a program as an unprivileged owner of root, or [] when we are not root. */
function unprivileged (root: string): string[] {
  if (process.getuid?.() !== 0) return []
  const id = (flag: string) => Number(execFileSync('id', [flag, UNPRIVILEGED_USER], { encoding: 'utf8' }).trim())
  const uid = id('-u')
  const gid = id('-g')
  chownSync(root, uid, gid)
  // setpriv (util-linux) changes the ids and execs the program: no PAM session, no login shell, the same environment.
  return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups']
}

async function run (prefix: string[], program: string, args: string[]): Promise<void> {
  const [command, ...rest] = [...prefix, program, ...args] as [string, ...string[]]
  // stdout and stderr are read until the program exits, not until the pipes close: with --log the server's own output
  // goes to the log, but waiting for "exit" stays safe whatever the postmaster inherits.
  const child = spawn(command, rest, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (exitCode) => resolve(exitCode))
  })
  if (code !== 0) throw new Error(`${[program, ...args].join(' ')} exited with ${code}: ${output.trim().slice(-2000)}`)
}

/** A cluster outside a tap test (the image check, the bench): its stop() also removes its folder. */
export async function startScratchPostgres (extraSettings: Record<string, string> = {}): Promise<PostgresCluster> {
  const teardowns: Array<() => unknown> = []
  const cleanUp = async () => { for (const teardown of teardowns.splice(0).reverse()) await teardown() }
  try {
    const cluster = await startPostgres({ teardown: (fn) => { teardowns.push(fn) } }, extraSettings)
    return { ...cluster, stop: cleanUp }
  } catch (err) {
    await cleanUp()
    throw err
  }
}

/**
 * A pool of the service's own kind on url, ended in t.teardown. An idle connection's failure fails the test, unless
 * options.onError expects it.
 */
export function openTestPool (t: Test, url: string, options: Partial<PoolOptions> = {}): pg.Pool {
  // pool.end() resolves once its clients are told to end, not once the server has let them go: on a loaded machine the
  // cluster's stop at the file's end can still reach one ("terminating connection due to administrator command").
  // What a closing pool's connections hear is no test's concern.
  let ending = false
  const pool = openPool(url, { onError: (err) => { if (!ending) t.fail(`idle connection failed: ${err.message}`) }, ...options })
  t.teardown(async () => {
    ending = true
    await pool.end()
  })
  return pool
}

// A blocked statement shows in pg_stat_activity within milliseconds; this long means it never blocked.
const LOCK_WAIT_LIMIT_MS = 10_000

/** Waits until so many sessions of the pool's database wait for a lock (the statements under test are blocked). */
export async function lockWaiters (admin: pg.Pool, n: number): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_LIMIT_MS
  for (;;) {
    const { rows: [row] } = await admin.query<{ n: number }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    if (row!.n >= n) return
    if (Date.now() > deadline) throw new Error(`${row!.n} sessions wait for a lock, not ${n}`)
    await sleep(20)
  }
}
