// Bench statistics: medians over repetitions, ratios to the baseline, and the targets with PASS/MISS.
import type { FootprintResult } from './footprint.js'
import type { LoadResult } from './load.js'
import { isBaseline, type RunResult, type ScenarioKey } from './scenarios.js'
import type { SoakResult } from './soak.js'
import type { WaitersResult } from './waiters.js'

const MB = 1024 * 1024

export type LoadSummary = { rps: number, p50: number, p99: number, p999: number, mean: number }

export type ScenarioSummary = LoadSummary & {
  key: ScenarioKey
  label: string
  peakRssMb: number
  /** Server CPU per answered request (µs); in the saturated run, per request of all three loads. */
  cpuUsPerRequest: number
  /** req/s over the bare-Fastify baseline's req/s in the same bench; null where the rate is fixed (the saturated probe). */
  ratio: number | null
  /** req/s over the baseline doing the same work (naive push receiver, lookups from memory), where there is one. */
  reference: { key: ScenarioKey, label: string, ratio: number } | null
  /** Non-2xx answers, socket errors and timeouts over all repetitions: anything but 0 makes the numbers suspect. */
  failures: number
  alongside?: Record<string, LoadSummary>
  /** Summed over repetitions, for the push scenarios: pushes answered 2xx, and pushes found in the database. */
  durability?: { answered: number, recorded: number }
  runs: RunResult[]
}

export type ScalingPoint = LoadSummary & { rows: number, fillMs: number, bytesPerTask: number, cpuUsPerRequest: number, peakRssMb: number }

export type Target = {
  name: string
  value: number
  comparison: '>=' | '<' | '<='
  limit: number
  unit: string
  pass: boolean
  /** How far from the limit, in words: "0.05 to spare" or "short by 0.12 (13%)". */
  margin: string
}

export function median (values: number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export function summariseLoads (loads: LoadResult[]): LoadSummary {
  return {
    rps: median(loads.map((load) => load.rps)),
    p50: median(loads.map((load) => load.latencyMs.p50)),
    p99: median(loads.map((load) => load.latencyMs.p99)),
    p999: median(loads.map((load) => load.latencyMs.p999)),
    mean: median(loads.map((load) => load.latencyMs.mean))
  }
}

export function failuresOf (loads: LoadResult[]): number {
  return loads.reduce((sum, load) => sum + load.non2xx + load.errors + load.timeouts, 0)
}

/** The reference baseline's summary, for a scenario that has one; its ratio is filled in from it. */
export type Reference = { key: ScenarioKey, label: string, rps: number }

export function summariseScenario (key: ScenarioKey, label: string, runs: RunResult[], baselineRps: number | null, fixedRate: boolean, reference: Reference | null = null): ScenarioSummary {
  const loads = runs.map((run) => run.load)
  const summary = summariseLoads(loads)
  const alongsideKeys = Object.keys(runs[0]?.alongside ?? {})
  const alongside = Object.fromEntries(alongsideKeys.map((name) => [name, summariseLoads(runs.map((run) => run.alongside![name]!))]))
  return {
    key,
    label,
    ...summary,
    peakRssMb: median(runs.map((run) => run.peakRssBytes)) / MB,
    cpuUsPerRequest: median(runs.map((run) => run.cpuUsPerRequest)),
    ratio: fixedRate || !baselineRps ? null : summary.rps / baselineRps,
    reference: reference ? { key: reference.key, label: reference.label, ratio: summary.rps / reference.rps } : null,
    failures: failuresOf([...loads, ...runs.flatMap((run) => Object.values(run.alongside ?? {}))]),
    ...(alongsideKeys.length > 0 ? { alongside } : {}),
    ...(runs.some((run) => run.durability)
      ? { durability: runs.reduce((sum, run) => ({ answered: sum.answered + (run.durability?.answered ?? 0), recorded: sum.recorded + (run.durability?.recorded ?? 0) }), { answered: 0, recorded: 0 }) }
      : {}),
    runs
  }
}

export function target (name: string, value: number, comparison: Target['comparison'], limit: number, unit = ''): Target {
  const pass = comparison === '>=' ? value >= limit : comparison === '<' ? value < limit : value <= limit
  const gap = Math.abs(value - limit)
  const relative = limit === 0 ? '' : ` (${Math.round(gap / Math.abs(limit) * 100)}%)`
  const amount = `${round(gap)}${unit}${relative}`
  return { name, value, comparison, limit, unit, pass, margin: pass ? `${amount} to spare` : `${comparison === '>=' ? 'short' : 'over'} by ${amount}` }
}

export type TargetInputs = {
  scenarios: Partial<Record<ScenarioKey, ScenarioSummary>>
  rows: number
  scaling: ScalingPoint[]
  soak: SoakResult | null
  waiters: WaitersResult | null
  footprint: FootprintResult | null
}

// The targets (issue 13) on a 2-core machine, as ratios to baselines measured in the same run.
const MIN_RATIO = { challenge: 0.9, push: 0.6 }
// Lookups against bare Fastify serving the same answers from memory: what auth, queries and hooks may cost.
const MIN_LOOKUP_VS_MEMORY = 0.8
// A durable push, group-committed, against one fsynced INSERT per push.
const MIN_PUSH_VS_NAIVE = 2
const MAX_SATURATED_CHALLENGE_P99_MS = 25
const MAX_RSS_MB = 150
const MAX_IDLE_RSS_MB = 80
const MAX_READY_MS = 1000
// One push releasing 1,000 waiters: serialised once, written to all.
const MAX_RELEASE_MS = 50
// "Flat": a lookup on the largest database may cost at most this much more than on the smallest (indexes, not scans).
const MAX_LOOKUP_SCALING = 1.25
const MAX_SOAK_GROWTH_PERCENT = 10

/** Every target whose scenario ran; a --only run checks only what it measured. */
export function targets ({ scenarios, rows, scaling, soak, waiters, footprint }: TargetInputs): Target[] {
  const list: Target[] = []
  const { challenge, lookup, push, challenge_saturated: saturated } = scenarios
  if (challenge) list.push(target('challenge req/s vs bare Fastify', challenge.ratio ?? 0, '>=', MIN_RATIO.challenge))
  if (push) list.push(target('durable push (FULL) vs bare Fastify', push.ratio ?? 0, '>=', MIN_RATIO.push))
  if (push?.reference) list.push(target('durable push (FULL) vs naive push (FULL)', push.reference.ratio, '>=', MIN_PUSH_VS_NAIVE))
  if (lookup?.reference) list.push(target(`lookup on ${count(rows)} tasks vs lookup from memory`, lookup.reference.ratio, '>=', MIN_LOOKUP_VS_MEMORY))
  if (saturated) list.push(target('challenge p99 while saturated', saturated.p99, '<', MAX_SATURATED_CHALLENGE_P99_MS, ' ms'))
  if (waiters) {
    for (const [kind, ms] of Object.entries(waiters.releaseMs)) list.push(target(`one push releases ${count(waiters.waiters)} ${kind}s`, ms, '<=', MAX_RELEASE_MS, ' ms'))
  }
  // Every service process the bench started under load or idle, whatever it ran; the baselines are not ours.
  const peaks = [
    ...Object.values(scenarios).filter((scenario) => !isBaseline(scenario.key)).map((scenario) => ({ label: scenario.label, mb: scenario.peakRssMb })),
    ...scaling.map((point) => ({ label: `lookup on ${count(point.rows)} tasks`, mb: point.peakRssMb })),
    ...(waiters ? [{ label: 'waiter fan-out', mb: waiters.peakRssBytes / MB }] : []),
    ...(footprint ? [{ label: 'start-up and idle', mb: footprint.peakRssBytes / MB }] : []),
    ...(soak ? [{ label: 'soak', mb: soak.peakRssBytes / MB }] : [])
  ]
  if (peaks.length > 0) {
    const worst = peaks.reduce((a, b) => (b.mb > a.mb ? b : a))
    list.push(target(`peak RSS, worst of every run (${worst.label})`, worst.mb, '<', MAX_RSS_MB, ' MB'))
  }
  if (footprint) {
    list.push(target(`idle RSS on ${count(rows)} tasks, settled`, footprint.idleRssBytes / MB, '<', MAX_IDLE_RSS_MB, ' MB'))
    list.push(target('ready on an empty database', footprint.readyMs.empty, '<', MAX_READY_MS, ' ms'))
    list.push(target(`ready on ${count(rows)} tasks`, footprint.readyMs.filled, '<', MAX_READY_MS, ' ms'))
  }
  const smallest = scaling[0]
  const largest = scaling.at(-1)
  if (smallest && largest && smallest !== largest) {
    list.push(target(`lookup mean latency, ${count(largest.rows)} vs ${count(smallest.rows)} tasks (flat)`, largest.mean / smallest.mean, '<=', MAX_LOOKUP_SCALING))
  }
  if (soak) list.push(target(`RSS growth over a ${soak.seconds} s soak after warm-up`, soak.growth * 100, '<=', MAX_SOAK_GROWTH_PERCENT, '%'))
  return list
}

function count (rows: number): string {
  return rows.toLocaleString('en-US')
}

export function round (value: number): number {
  if (!Number.isFinite(value)) return value
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2
  return Number(value.toFixed(digits))
}
