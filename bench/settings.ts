// Bench settings: every duration, connection count and size, for the full run and for --quick, with the reason for each.
import { parseArgs } from 'node:util'
import { resolve } from 'node:path'
import { SCENARIO_KEYS } from './scenarios.js'

export type Settings = {
  mode: 'full' | 'quick'
  out: string
  /** Run only these scenarios (the baseline always runs: every ratio needs it); empty = all. */
  only: string[]
  /** Write a CPU profile of every service process into this folder. */
  cpuProfileDir: string | undefined
  /** Both the service and the baseline log at this level, so request logs are not the cost being measured. */
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
  /** 0 skips the soak. */
  soakSeconds: number
  soakWarmupSeconds: number
  soakSampleMs: number
}

const FULL: Omit<Settings, 'out' | 'only' | 'cpuProfileDir'> = {
  mode: 'full',
  logLevel: 'warn',
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
  soakSeconds: 60,
  // The first seconds of a soak fill caches and JIT code; growth is measured from here.
  soakWarmupSeconds: 10,
  soakSampleMs: 1_000
}

const QUICK: Omit<Settings, 'out' | 'only' | 'cpuProfileDir'> = {
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
  soakSeconds: 0
}

export const USAGE = `usage: npm run bench [-- --quick] [-- --out FILE] [-- --only push,lookup] [-- --cpu-prof DIR]
  --quick           smoke mode: 1 s runs, 1 repetition, ${QUICK.rows} rows, no soak
  --out FILE        where to write the JSON results (default bench-results.json)
  --only KEYS       only these scenarios (plus the baseline), no scaling or soak: ${SCENARIO_KEYS.join(', ')}
  --cpu-prof DIR    write a CPU profile of every service process into DIR (open it in Chrome DevTools)`

export function parseSettings (argv: string[]): Settings | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: 'bench-results.json' },
      only: { type: 'string', default: '' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false }
    },
    strict: true
  })
  if (values.help) return null
  const only = values.only.split(',').map((key) => key.trim()).filter(Boolean)
  const unknown = only.filter((key) => !(SCENARIO_KEYS as readonly string[]).includes(key))
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIO_KEYS.join(', ')}`)
  return {
    ...(values.quick ? QUICK : FULL),
    out: resolve(values.out),
    only,
    cpuProfileDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof'])
  }
}
