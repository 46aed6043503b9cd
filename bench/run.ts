// Entry of `npm run bench`: fills the databases, runs every scenario interleaved, prints the tables and writes the JSON.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fillTasks } from './fill.js'
import { footprint } from './footprint.js'
import { sampleLookups } from './lookup-sample.js'
import { isPostgres, lookupRun, SCENARIOS, type BenchContext, type RunResult, type Scenario, type ScenarioKey } from './scenarios.js'
import { describeCost, stopPostgresBench } from './postgres.js'
import { postgresBinDir } from '../test/postgres-cluster.js'
import { ensureBuilt } from './servers.js'
import { parseSettings, USAGE } from './settings.js'
import { soak } from './soak.js'
import { failuresOf, median, summariseLoads, summariseScenario, targets, type ScalingPoint, type ScenarioSummary } from './stats.js'
import { renderReport, type Report } from './table.js'
import { waiterFanout } from './waiters.js'

const GB = 1024 ** 3

const started = performance.now()
const log = (line: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1)} s] ${line}\n`)

const settings = parseSettings(process.argv.slice(2))
if (!settings) {
  console.log(USAGE)
  process.exit(0)
}

// Other work on the machine skews every number: the 1-minute load average before and after the bench shows it.
const loadBefore = loadavg()[0]!
const dir = mkdtempSync(join(tmpdir(), 's2v-bench-'))
// The databases are scratch (about 1 GB at a million tasks): gone however the bench ends.
process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))

ensureBuilt(log)

const mainDb = join(dir, 'main.db')
log(`filling ${settings.rows.toLocaleString('en-US')} tasks into ${mainDb}`)
const fill = fillTasks(mainDb, settings.rows)
log(`filled in ${(fill.ms / 1000).toFixed(1)} s (${Math.round(fill.bytesPerTask)} bytes/task)`)

let seedBatch = 0
const ctx: BenchContext = { settings, dir, mainDb, log, nextSeedBatch: () => ++seedBatch }

// --only: the chosen scenarios, plus bare Fastify (every ratio) and each chosen one's reference baseline.
const everything = settings.only.length === 0
const chosen = (key: string) => everything || settings.only.includes(key)
// References are followed through: pg_push is compared with push, which is compared with the naive push.
const wanted = new Set<string>(['baseline'])
const want = (key: ScenarioKey): void => {
  if (wanted.has(key)) return
  wanted.add(key)
  const reference = SCENARIOS.find((scenario) => scenario.key === key)?.reference
  if (reference) want(reference)
}
for (const scenario of SCENARIOS) if (chosen(scenario.key)) want(scenario.key)
// The PostgreSQL scenarios start a throwaway cluster with this machine's server: without one they are left out of a
// full run (said so), and asked for by name they fail.
if (everything && postgresBinDir() === null) {
  log('PostgreSQL\'s server is not installed (apt-get install postgresql): the pg_* scenarios are left out')
  for (const scenario of SCENARIOS) if (isPostgres(scenario.key)) wanted.delete(scenario.key)
}
const selected = SCENARIOS.filter((scenario) => wanted.has(scenario.key))
if (wanted.has('baseline_lookup')) {
  ctx.lookupSample = await sampleLookups(ctx)
  log(`sampled ${ctx.lookupSample.answers.length.toLocaleString('en-US')} lookup answers (${Math.round(ctx.lookupSample.bytes / ctx.lookupSample.answers.length)} bytes on average) for the lookup baseline`)
}
const runs: Partial<Record<ScenarioKey, RunResult[]>> = {}
/** Every repetition of these scenarios, interleaved. */
async function runRounds (scenarios: readonly Scenario[]): Promise<void> {
  const { repetitions } = ctx.settings
  for (let rep = 1; rep <= repetitions; rep++) {
    for (const scenario of scenarios) {
      runs[scenario.key] ??= []
      const result = await scenario.run(ctx)
      runs[scenario.key]!.push(result)
      log(`${rep}/${repetitions} ${scenario.label}: ${Math.round(result.load.rps)} req/s, p99 ${result.load.latencyMs.p99.toFixed(2)} ms`)
    }
  }
}
// The PostgreSQL scenarios run after everything on SQLite: the cluster, its copy of the million tasks and its background
// writers then never share the two cores with a SQLite run.
await runRounds(selected.filter((scenario) => !isPostgres(scenario.key)))

// Lookup scaling: smaller databases, interleaved like the rest; the main database (already measured) is the largest point.
const smaller = (everything ? settings.scalingRows : []).map((rows) => {
  const path = join(dir, `scaling-${rows}.db`)
  log(`filling ${rows.toLocaleString('en-US')} tasks for the scaling check`)
  return { rows, path, fill: fillTasks(path, rows), runs: [] as RunResult[] }
})
for (let rep = 1; rep <= settings.repetitions; rep++) {
  for (const point of smaller) {
    const result = await lookupRun(ctx, point.path, point.rows)
    point.runs.push(result)
    log(`${rep}/${settings.repetitions} lookup on ${point.rows.toLocaleString('en-US')} tasks: ${Math.round(result.load.rps)} req/s`)
  }
}
const scalingPoints = [...smaller, ...(runs.lookup ? [{ rows: settings.rows, fill, runs: runs.lookup }] : [])]
const scaling: ScalingPoint[] = scalingPoints.map((point) => ({
  rows: point.rows,
  fillMs: point.fill.ms,
  bytesPerTask: point.fill.bytesPerTask,
  cpuUsPerRequest: median(point.runs.map((run) => run.cpuUsPerRequest)),
  peakRssMb: median(point.runs.map((run) => run.peakRssBytes)) / (1024 * 1024),
  ...summariseLoads(point.runs.map((run) => run.load))
}))

// Not loads on one route: each runs once, with its own rounds inside.
const waiters = chosen('waiters') ? await waiterFanout(ctx) : null
const footprintResult = chosen('footprint') ? await footprint(ctx) : null

await runRounds(selected.filter((scenario) => isPostgres(scenario.key)))
await stopPostgresBench()

// Last: its submits leave tasks queued in the main database (PostgreSQL's copy of it is made before).
let soakResult = null
if (everything && settings.soakSeconds > 0) {
  log(`soak: ${settings.soakSeconds} s of mixed load`)
  soakResult = await soak(ctx)
}
// Where the time went on PostgreSQL, run by run.
const postgresCosts = Object.fromEntries(selected.filter((scenario) => isPostgres(scenario.key)).map((scenario) => [scenario.key, runs[scenario.key]!.map((run) => run.postgres)]))

const rpsOf = (key: ScenarioKey) => summariseLoads(runs[key]!.map((run) => run.load)).rps
const baselineRps = rpsOf('baseline')
const scenarios: Partial<Record<ScenarioKey, ScenarioSummary>> = Object.fromEntries(selected.map((scenario) => {
  const reference = scenario.reference ? { key: scenario.reference, label: SCENARIOS.find((s) => s.key === scenario.reference)!.label, rps: rpsOf(scenario.reference) } : null
  return [scenario.key, summariseScenario(scenario.key, scenario.label, runs[scenario.key]!, scenario.key === 'baseline' ? null : baselineRps, scenario.key === 'challenge_saturated', reference)]
}))
scenarios.baseline!.ratio = 1

const report: Report = {
  machine: {
    nproc: availableParallelism(),
    cpu: cpuModel(),
    node: process.version,
    memoryGb: Math.round(totalmem() / GB),
    loadBefore,
    loadAfter: loadavg()[0]!
  },
  date: new Date().toISOString().slice(0, 10),
  settings: {
    mode: settings.mode,
    logLevel: settings.logLevel,
    repetitions: settings.repetitions,
    runSeconds: settings.runSeconds,
    warmupSeconds: settings.warmupSeconds,
    connections: settings.connections,
    rows: settings.rows,
    only: settings.only,
    nodeFlags: settings.nodeFlags,
    idleSeconds: settings.idleSeconds,
    earlyIdleSeconds: settings.earlyIdleSeconds
  },
  fill,
  scenarios: Object.values(scenarios),
  scaling,
  soak: soakResult,
  waiters,
  footprint: footprintResult,
  targets: targets({ scenarios, rows: settings.rows, scaling, soak: soakResult, waiters, footprint: footprintResult })
}

console.log(renderReport(report))
for (const [key, costs] of Object.entries(postgresCosts)) for (const cost of costs) if (cost) console.log(`  ${describeCost(key, cost)}`)
// Where a push's time goes on SQLite: how many pushes shared a commit and its fsync, run by run.
const groupCommits = Object.fromEntries(selected.filter((scenario) => runs[scenario.key]?.some((run) => run.groupCommits)).map((scenario) => [scenario.key, runs[scenario.key]!.map((run) => ({ ...run.groupCommits!, pushes: run.durability!.answered }))]))
for (const [key, all] of Object.entries(groupCommits)) {
  console.log(`  ${key}: ${all.map(({ count, seconds, pushes }) => `${count} group commits of ${(pushes / count).toFixed(1)} pushes, ${(seconds * 1000 / count).toFixed(2)} ms each`).join('; ')} (commit and fsync, warm-up included)`)
}
writeFileSync(settings.out, JSON.stringify({ ...report, scenarios, postgres: postgresCosts, groupCommits }, null, 2) + '\n')
log(`results written to ${settings.out}`)

const broken = [
  ...report.scenarios.filter((scenario) => scenario.failures > 0).map((scenario) => scenario.label),
  ...report.scenarios.filter((scenario) => scenario.durability && scenario.durability.recorded < scenario.durability.answered).map((scenario) => `${scenario.label} (durability)`),
  ...(soakResult && failuresOf(Object.values(soakResult.loads)) > 0 ? ['soak'] : []),
  ...(waiters && waiters.failures > 0 ? ['waiter fan-out'] : [])
]
if (broken.length > 0) {
  log(`failed requests in: ${broken.join(', ')}; the numbers above are suspect`)
  process.exitCode = 1
}

function cpuModel (): string {
  const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
  return match?.[1]?.trim() ?? 'unknown CPU'
}
