// Bench statistics: medians over repetitions, ratios to the baseline, and the targets with PASS/MISS.
import type { LoadResult } from './load.js'
import type { RunResult, ScenarioKey } from './scenarios.js'
import type { SoakResult } from './soak.js'

const MB = 1024 * 1024

export type LoadSummary = { rps: number, p50: number, p99: number, p999: number, mean: number }

export type ScenarioSummary = LoadSummary & {
  key: ScenarioKey
  label: string
  peakRssMb: number
  /** Server CPU per answered request (µs); in the saturated run, per request of all three loads. */
  cpuUsPerRequest: number
  /** req/s over the baseline's req/s in the same bench; null where the rate is fixed (the saturated probe). */
  ratio: number | null
  /** Non-2xx answers, socket errors and timeouts over all repetitions: anything but 0 makes the numbers suspect. */
  failures: number
  alongside?: Record<string, LoadSummary>
  /** Summed over repetitions, for the push scenarios: pushes answered 2xx, and pushes found in the database. */
  durability?: { answered: number, recorded: number }
  runs: RunResult[]
}

export type ScalingPoint = LoadSummary & { rows: number, fillMs: number, bytesPerTask: number, cpuUsPerRequest: number }

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

export function summariseScenario (key: ScenarioKey, label: string, runs: RunResult[], baselineRps: number | null, fixedRate: boolean): ScenarioSummary {
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
}

// The targets on a 2-core machine, as ratios to the baseline measured in the same run.
const MIN_RATIO = { challenge: 0.9, lookup: 0.8, push: 0.6 }
const MAX_SATURATED_CHALLENGE_P99_MS = 25
const MAX_RSS_MB = 150
// "Flat": a lookup on the largest database may cost at most this much more than on the smallest (indexes, not scans).
const MAX_LOOKUP_SCALING = 1.25
const MAX_SOAK_GROWTH_PERCENT = 10

/** Every target whose scenario ran; a --only run checks only what it measured. */
export function targets ({ scenarios, rows, scaling, soak }: TargetInputs): Target[] {
  const list: Target[] = []
  const { challenge, lookup, push, challenge_saturated: saturated } = scenarios
  if (challenge) list.push(target('challenge req/s vs baseline', challenge.ratio ?? 0, '>=', MIN_RATIO.challenge))
  if (lookup) list.push(target(`lookup on ${count(rows)} tasks vs baseline`, lookup.ratio ?? 0, '>=', MIN_RATIO.lookup))
  if (push) list.push(target('durable push (FULL) vs baseline', push.ratio ?? 0, '>=', MIN_RATIO.push))
  if (saturated) list.push(target('challenge p99 while saturated', saturated.p99, '<', MAX_SATURATED_CHALLENGE_P99_MS, ' ms'))
  const service = Object.values(scenarios).filter((scenario) => scenario.key !== 'baseline')
  if (service.length > 0) {
    const worst = service.reduce((a, b) => (b.peakRssMb > a.peakRssMb ? b : a))
    list.push(target(`peak RSS under load (${worst.label})`, worst.peakRssMb, '<', MAX_RSS_MB, ' MB'))
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
