// The overview's numbers: counts from the database, budgets from the reconciler, challenge latency from our own histogram.
import type { Histogram, Registry } from 'prom-client'
import type { CountRow, DeliveryCounts, HourRow } from '../db/stats-repository.js'
import type { Stats } from '../schemas/stats.js'
import { TASK_STATUSES } from './task-state.js'

const HOUR_MS = 3_600_000
const HOURS = 24
const SLOW_CHALLENGE_S = 1 // a third of MiniMax's 3 s limit: worth a look long before it fails creates
const FINISHED = new Set(['success', 'failed'])

/** What the overview reads from the database, on either engine (src/db/stats-repository.ts, src/db/postgres/). */
export interface StatsReads {
  /** Tasks by status now; `caller` limits them to one caller's. */
  counts: (caller?: string) => Promise<CountRow[]>
  /** Tasks created since `since` (ISO), by creation hour ("2026-12-01T08") and current status. */
  hours: (since: string, caller?: string) => Promise<HourRow[]>
  /** Milliseconds from submit to the first applied success of each successful task created since `since`, unordered. */
  successDurations: (since: string, caller?: string) => Promise<number[]>
  deliveries: (caller?: string) => Promise<DeliveryCounts>
}

export type StatsSources = {
  repo: StatsReads
  budgets: () => Promise<Stats['providers']>
  registry: Registry
  challengeMetric: string
}

/** The overview; `caller` limits every task number to that caller's tasks (undefined: everyone's). */
export async function overview (sources: StatsSources, caller: string | undefined, now = Date.now()): Promise<Stats> {
  const { repo } = sources
  const byStatus: Record<string, number> = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0]))
  for (const row of await repo.counts(caller)) byStatus[row.status] = row.n

  // 24 buckets ending with the current hour; since = the start of the oldest.
  const firstHour = Math.floor(now / HOUR_MS) * HOUR_MS - (HOURS - 1) * HOUR_MS
  const hours = Array.from({ length: HOURS }, (_, i) => ({ hour: new Date(firstHour + i * HOUR_MS).toISOString(), success: 0, failed: 0, running: 0 }))
  const since = new Date(firstHour).toISOString()
  for (const row of await repo.hours(since, caller)) {
    const bucket = hours[Math.floor((Date.parse(`${row.hour}:00:00.000Z`) - firstHour) / HOUR_MS)]
    if (!bucket) continue
    if (row.status === 'success') bucket.success += row.n
    else if (row.status === 'failed') bucket.failed += row.n
    else if (!FINISHED.has(row.status)) bucket.running += row.n
  }
  const succeeded = hours.reduce((sum, h) => sum + h.success, 0)
  const failed = hours.reduce((sum, h) => sum + h.failed, 0)
  const created = succeeded + failed + hours.reduce((sum, h) => sum + h.running, 0)
  const durations = (await repo.successDurations(since, caller)).sort((a, b) => a - b)

  return {
    generated_at: new Date(now).toISOString(),
    scope: caller === undefined ? 'all' : 'caller',
    tasks: { by_status: byStatus, total: Object.values(byStatus).reduce((a, b) => a + b, 0) },
    last_24h: {
      hours,
      created,
      succeeded,
      failed,
      success_rate: succeeded + failed === 0 ? null : Math.round((succeeded / (succeeded + failed)) * 1000) / 1000,
      submit_to_success: { count: durations.length, median_ms: percentile(durations, 0.5), p95_ms: percentile(durations, 0.95) }
    },
    // The submit queue's status, when this service has one.
    queue: 'queued' in byStatus ? { depth: byStatus.queued ?? 0 } : null,
    providers: await sources.budgets(),
    deliveries: await repo.deliveries(caller),
    challenge: await challengeLatency(sources.registry, sources.challengeMetric)
  }
}

/** Nearest-rank percentile of sorted values; null when there are none. */
export function percentile (sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

type Bucket = { le: number, count: number }

/** histogram_quantile: the q-th quantile by linear interpolation inside the bucket that holds it, in the metric's unit. */
export function bucketQuantile (buckets: Bucket[], q: number): number | null {
  const total = buckets.at(-1)?.count ?? 0
  if (total === 0) return null
  const rank = q * total
  let lower = 0
  let below = 0
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return lower // beyond the last finite bound: its lower edge is all we know
      return lower + (le - lower) * ((rank - below) / Math.max(count - below, 1))
    }
    lower = le
    below = count
  }
  return lower
}

async function challengeLatency (registry: Registry, name: string): Promise<Stats['challenge']> {
  const metric = registry.getSingleMetric(name) as Histogram | undefined
  const values = metric ? (await metric.get()).values : []
  const buckets: Bucket[] = values
    .filter((v) => v.metricName === `${name}_bucket`)
    .map((v) => ({ le: v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), count: v.value }))
    .sort((a, b) => a.le - b.le)
  const count = values.find((v) => v.metricName === `${name}_count`)?.value ?? 0
  const sum = values.find((v) => v.metricName === `${name}_sum`)?.value ?? 0
  const ms = (seconds: number | null) => seconds === null ? null : Math.round(seconds * 1_000_000) / 1000
  const withinSlow = buckets.find((b) => b.le === SLOW_CHALLENGE_S)?.count ?? count
  return {
    count,
    mean_ms: count === 0 ? null : ms(sum / count),
    p50_ms: ms(bucketQuantile(buckets, 0.5)),
    p95_ms: ms(bucketQuantile(buckets, 0.95)),
    over_1s: count - withinSlow
  }
}
