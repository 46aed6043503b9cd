// Bench settings: every duration, connection count and size, for the full run and for --quick, with the reason for each.
import { parseArgs } from 'node:util'
import { resolve } from 'node:path'
import { SCENARIO_KEYS } from './scenarios.js'
import { PRODUCTION_NODE_FLAGS } from './servers.js'

/** Checks that are not a load on one route: they run after the scenarios, and --only can pick them too. */
export const CHECK_KEYS = ['waiters', 'footprint'] as const
const SELECTABLE: readonly string[] = [...SCENARIO_KEYS, ...CHECK_KEYS]

export type Settings = {
  mode: 'full' | 'quick'
  out: string
  /** Run only these scenarios and checks (plus the baselines their ratios need); empty = all. */
  only: string[]
  /** Write a CPU profile of every service process into this folder. */
  cpuProfileDir: string | undefined
  /** Node flags for every service process (V8's heap sizes, say), before dist/server.js; by default those `npm start` uses. */
  nodeFlags: string[]
  /** The service and every baseline log at this level: the service's default (info), whose request logs are part of its cost. */
  logLevel: string
  repetitions: number
  warmupSeconds: number
  runSeconds: number
  connections: number
  /** Tasks filled into the main database (lookups, pushes, submits, soak). */
  rows: number
  /** Smaller databases for the lookup scaling check; the main database is the largest point. */
  scalingRows: number[]
  /** Fresh tasks seeded for each push run: the pushes cycle over them. */
  pushTasks: number
  saturation: { pushConnections: number, lookupConnections: number, probeConnections: number, probeRate: number }
  /** Lookup answers the service gives, copied for the in-memory lookup baseline to serve. */
  lookupSample: number
  /** Long-polls, then event streams, open on one task when its push arrives; rounds of each, in one service process. */
  waiters: number
  waiterRounds: number
  /** Rounds of each kind before those, not counted (reported beside): the first release runs cold code. */
  waiterWarmupRounds: number
  /** Service starts timed (spawn to the first 200 of GET /readyz) on an empty and on the main database, alternately. */
  readyRepetitions: number
  /** How long a started service sits without load before its idle VmRSS is read (the target's figure). */
  idleSeconds: number
  /** When the first, early reading is taken: what the process holds right after start-up, reported beside. */
  earlyIdleSeconds: number
  /** 0 skips the soak. */
  soakSeconds: number
  soakWarmupSeconds: number
  soakSampleMs: number
}

const FULL: Omit<Settings, 'out' | 'only' | 'cpuProfileDir' | 'logLevel' | 'nodeFlags'> = {
  mode: 'full',
  // Three interleaved repetitions: the median shrugs off one disturbed run.
  repetitions: 3,
  // A fresh process needs a moment before V8 has optimised the hot paths.
  warmupSeconds: 2,
  // Long enough for a stable rate at tens of thousands of requests per second; short enough for ~10 min in all.
  runSeconds: 10,
  // autocannon's default: keeps one single-threaded server busy on loopback without turning latency into queueing.
  connections: 10,
  rows: 1_000_000,
  scalingRows: [10_000, 100_000],
  // Many distinct tasks, so pushes touch rows all over the tables, as in production.
  pushTasks: 10_000,
  saturation: {
    // Half the usual connections each for pushes and lookups: together they keep the server at 100% CPU.
    pushConnections: 5,
    lookupConnections: 5,
    // Two probe connections, so one slow answer does not hold back the next probe (coordinated omission).
    probeConnections: 2,
    // MiniMax sends one challenge per create (a few per minute); 100/s gives 1000 samples per run and adds no load.
    probeRate: 100
  },
  // Enough distinct answers that the baseline's lookups are not one cached string; small enough to fetch in a second.
  lookupSample: 2_000,
  // The figure: one push releasing 1,000 waiters.
  waiters: 1_000,
  // Five rounds per kind: a median that one slow round (a checkpoint, the other core busy) does not move.
  waiterRounds: 5,
  // As the loads' warm-up: the first release after start compiles the release path and the answer's serialiser
  // (93-129 ms against ~45 ms warm in every run of 2026-12-02), which is one release per process, not the fan-out's cost.
  waiterWarmupRounds: 1,
  readyRepetitions: 5,
  // Settled: V8's memory reducer collects the start-up garbage (mostly in the young generation) once the process has
  // been idle ~8 s; before that the RSS still holds it (measured on 10^5 tasks, three starts: 78.6-80.2 MB from 1 s to
  // 8 s after ready, 68.6-70.0 MB from 10 s on). The early reading shows the difference.
  idleSeconds: 12,
  earlyIdleSeconds: 3,
  soakSeconds: 60,
  // The first seconds of a soak fill caches and JIT code; growth is measured from here.
  soakWarmupSeconds: 10,
  soakSampleMs: 1_000
}

const QUICK: Omit<Settings, 'out' | 'only' | 'cpuProfileDir' | 'logLevel' | 'nodeFlags'> = {
  ...FULL,
  mode: 'quick',
  // A smoke run: every scenario once, the same table, well under 30 s.
  repetitions: 1,
  // autocannon runs whole seconds: a warm-up would cost a second per scenario.
  warmupSeconds: 0,
  runSeconds: 1,
  rows: 1_000,
  scalingRows: [100],
  pushTasks: 200,
  lookupSample: 200,
  waiterRounds: 1,
  // Kept, so the smoke run goes through the warm-up's path too (a few seconds).
  waiterWarmupRounds: 1,
  readyRepetitions: 1,
  idleSeconds: 2,
  earlyIdleSeconds: 1,
  soakSeconds: 0
}

// The service's default: the bench measures it as it runs in production.
const DEFAULT_LOG_LEVEL = 'info'

export const USAGE = `usage: npm run bench [-- --quick] [-- --out FILE] [-- --only push,lookup] [-- --rows N] [-- --repetitions N] [-- --log-level LEVEL] [-- --cpu-prof DIR] [-- --node-flags=FLAGS]
  --quick           smoke mode: 1 s runs, 1 repetition, ${QUICK.rows} rows, no soak
  --out FILE        where to write the JSON results (default bench-results.json)
  --only KEYS       only these (plus the baselines they are compared with), no scaling or soak: ${SELECTABLE.join(', ')}
  --log-level LEVEL the service's and every baseline's LOG_LEVEL (default ${DEFAULT_LOG_LEVEL}, the service's default)
  --repetitions N   interleaved repetitions of every scenario (default ${FULL.repetitions}, --quick ${QUICK.repetitions}); medians over them
  --rows N          tasks in the main database (default ${FULL.rows}, --quick ${QUICK.rows}); the pg_* scenarios copy them all into PostgreSQL
  --cpu-prof DIR    write a CPU profile of every service process into DIR (open it in Chrome DevTools)
  --node-flags=FLAGS node flags for every service process, space-separated, after an = (default ${PRODUCTION_NODE_FLAGS.join(' ')}, as npm start runs it; --node-flags= runs it without)`

export function parseSettings (argv: string[]): Settings | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: 'bench-results.json' },
      only: { type: 'string', default: '' },
      'log-level': { type: 'string', default: DEFAULT_LOG_LEVEL },
      'cpu-prof': { type: 'string' },
      'node-flags': { type: 'string' },
      rows: { type: 'string' },
      repetitions: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false }
    },
    strict: true
  })
  if (values.help) return null
  const only = values.only.split(',').map((key) => key.trim()).filter(Boolean)
  const unknown = only.filter((key) => !SELECTABLE.includes(key))
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SELECTABLE.join(', ')}`)
  const nodeFlags = values['node-flags'] === undefined ? PRODUCTION_NODE_FLAGS : values['node-flags'].split(' ').filter(Boolean)
  const notFlag = nodeFlags.find((flag) => !flag.startsWith('--'))
  if (notFlag !== undefined) throw new Error(`--node-flags takes node flags (--name or --name=value), got ${notFlag}`)
  const rows = values.rows === undefined ? undefined : Number(values.rows)
  if (rows !== undefined && !(Number.isInteger(rows) && rows >= 1000)) throw new Error(`--rows must be a whole number of at least 1000, got ${values.rows}`)
  const repetitions = values.repetitions === undefined ? undefined : Number(values.repetitions)
  if (repetitions !== undefined && !(Number.isInteger(repetitions) && repetitions >= 1)) throw new Error(`--repetitions must be a whole number of at least 1, got ${values.repetitions}`)
  return {
    ...(values.quick ? QUICK : FULL),
    ...(rows === undefined ? {} : { rows }),
    ...(repetitions === undefined ? {} : { repetitions }),
    out: resolve(values.out),
    only,
    logLevel: values['log-level'],
    cpuProfileDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    nodeFlags
  }
}
