// Bench output: the results as plain-text tables (stdout, and pasted into the README).
import type { FillResult } from './fill.js'
import type { FootprintResult } from './footprint.js'
import type { SoakResult } from './soak.js'
import { PRODUCTION_ENV } from './servers.js'
import { round, type ScalingPoint, type ScenarioSummary, type Target } from './stats.js'
import type { WaitersResult } from './waiters.js'

const MB = 1024 * 1024

export type Report = {
  machine: { nproc: number, cpu: string, node: string, memoryGb: number, loadBefore: number, loadAfter: number }
  date: string
  settings: { mode: string, logLevel: string, repetitions: number, runSeconds: number, warmupSeconds: number, connections: number, rows: number, only: string[], nodeFlags: string[], idleSeconds: number, earlyIdleSeconds: number }
  fill: FillResult
  scenarios: ScenarioSummary[]
  scaling: ScalingPoint[]
  soak: SoakResult | null
  waiters: WaitersResult | null
  footprint: FootprintResult | null
  targets: Target[]
}

export function renderReport (report: Report): string {
  const { machine, settings, fill } = report
  const lines = [
    `s2v-callback bench (${settings.mode}${settings.only.length > 0 ? `, only ${settings.only.join(', ')}` : ''}) on ${machine.nproc} × ${machine.cpu}, ` +
      `${machine.memoryGb} GB, Node ${machine.node}, ${report.date}; load average ${machine.loadBefore.toFixed(1)} before, ${machine.loadAfter.toFixed(1)} after`,
    `${settings.repetitions} interleaved repetition(s) of ${settings.runSeconds} s after ${settings.warmupSeconds} s of warm-up, ` +
      `${settings.connections} connections, medians; the service and every baseline log at "${settings.logLevel}"` +
      `; the service runs as node ${[...settings.nodeFlags, 'dist/server.js'].join(' ')} with ${Object.entries(PRODUCTION_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}`,
    `fill: ${fill.rows.toLocaleString('en-US')} tasks + ${fill.events.toLocaleString('en-US')} events in ${(fill.ms / 1000).toFixed(1)} s, ` +
      `${(fill.bytes / MB).toFixed(0)} MB (${Math.round(fill.bytesPerTask)} bytes/task incl. history and indexes)`,
    '',
    table(['scenario', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'peak RSS MB', 'CPU µs/req', 'vs bare Fastify', 'vs own baseline'], report.scenarios.map((scenario) => [
      scenario.label,
      int(scenario.rps),
      ms(scenario.p50),
      ms(scenario.p99),
      ms(scenario.p999),
      scenario.peakRssMb.toFixed(0),
      int(scenario.cpuUsPerRequest),
      scenario.ratio === null ? '–' : scenario.ratio.toFixed(2),
      scenario.reference === null ? '–' : scenario.reference.ratio.toFixed(2)
    ]))
  ]
  // Which baseline "vs own baseline" compares with, once per baseline.
  const references = new Map<string, string[]>()
  for (const scenario of report.scenarios) if (scenario.reference) references.set(scenario.reference.label, [...references.get(scenario.reference.label) ?? [], scenario.label])
  if (references.size > 0) lines.push(`  vs own baseline: ${[...references].map(([reference, labels]) => `${labels.map((label) => `"${label}"`).join(', ')} against "${reference}"`).join('; ')}`)
  for (const scenario of report.scenarios) {
    for (const [name, load] of Object.entries(scenario.alongside ?? {})) {
      lines.push(`  during "${scenario.label}": ${name} ${int(load.rps)} req/s, p50 ${ms(load.p50)} ms, p99 ${ms(load.p99)} ms`)
    }
    if (scenario.durability) {
      const { answered, recorded } = scenario.durability
      lines.push(`  "${scenario.label}": ${answered.toLocaleString('en-US')} pushes answered 200, ${recorded.toLocaleString('en-US')} in the database afterwards ` +
        (recorded >= answered ? '(every acknowledged push; the rest were in flight when the load stopped)' : '— ACKNOWLEDGED PUSHES MISSING'))
    }
    if (scenario.failures > 0) lines.push(`  WARNING: "${scenario.label}" had ${scenario.failures} non-2xx answers, errors or timeouts: ${describeFailures(scenario)}`)
  }
  if (report.scaling.length > 1) {
    lines.push('', 'lookup scaling', table(['tasks', 'req/s', 'mean ms', 'p50 ms', 'p99 ms', 'CPU µs/req', 'bytes/task', 'fill s'], report.scaling.map((point) => [
      point.rows.toLocaleString('en-US'), int(point.rps), ms(point.mean), ms(point.p50), ms(point.p99), int(point.cpuUsPerRequest),
      String(Math.round(point.bytesPerTask)), (point.fillMs / 1000).toFixed(1)
    ])))
  }
  if (report.waiters) {
    const { waiters } = report
    const roundsOf = (kind: string, warmup: boolean) => waiters.rounds.filter((r) => r.kind === kind && r.warmup === warmup).map((r) => ms(r.releaseMs)).join(' ')
    const roundsPerKind = (warmup: boolean) => waiters.rounds.filter((r) => r.warmup === warmup).length / Object.keys(waiters.releaseMs).length
    lines.push('', `waiter fan-out: one push "success" releasing ${waiters.waiters.toLocaleString('en-US')} waiters on one task, ` +
      `ms from sending the push until the last has its answer, median of ${roundsPerKind(false)} round(s) after ${roundsPerKind(true)} warm-up round(s); ` +
      `peak RSS ${mb(waiters.peakRssBytes)} MB` + (waiters.failures > 0 ? `; WARNING: ${waiters.failures} waiters or pushes not answered` : ''),
    table(['waiters', 'median ms', 'rounds ms', 'warm-up ms'], Object.entries(waiters.releaseMs).map(([kind, median]) => [
      kind, ms(median), roundsOf(kind, false), roundsOf(kind, true) || '–'
    ])))
  }
  if (report.footprint) {
    const { footprint } = report
    lines.push('', `footprint: ready (spawn to the first 200 of GET /readyz) in ${int(footprint.readyMs.empty)} ms on an empty database, ` +
      `${int(footprint.readyMs.filled)} ms on ${settings.rows.toLocaleString('en-US')} tasks; idle RSS ${mb(footprint.idleRssBytes)} MB ` +
      `${settings.idleSeconds} s after ready (${mb(footprint.earlyIdleRssBytes)} MB after ${settings.earlyIdleSeconds} s) (medians of ${footprint.runs.filledReadyMs.length})`)
  }
  if (report.soak) {
    const soak = report.soak
    lines.push('', `soak: ${soak.seconds} s of mixed load; RSS ${mb(soak.rssAfterWarmupBytes)} MB after ${soak.warmupSeconds} s warm-up, ` +
      `${mb(soak.rssEndBytes)} MB at the end (max ${mb(soak.rssMaxBytes)} MB): ${(soak.growth * 100).toFixed(1)}% growth; ` +
      Object.entries(soak.loads).map(([name, load]) => `${name} ${int(load.rps)} req/s`).join(', '))
  } else {
    lines.push('', `soak: skipped (${settings.mode === 'quick' ? '--quick' : '--only'})`)
  }
  lines.push('', 'targets', table(['target', 'measured', 'limit', 'result'], report.targets.map((t) => [
    t.name, `${round(t.value)}${t.unit}`, `${t.comparison} ${t.limit}${t.unit}`, `${t.pass ? 'PASS' : 'MISS'} (${t.margin})`
  ])))
  return lines.join('\n')
}

function describeFailures (scenario: ScenarioSummary): string {
  const loads = scenario.runs.flatMap((run) => [run.load, ...Object.values(run.alongside ?? {})])
  return loads.filter((load) => load.non2xx + load.errors + load.timeouts > 0)
    .map((load) => JSON.stringify({ refusals: load.refusals, errors: load.errors, timeouts: load.timeouts, firstError: load.firstError }))
    .join('; ')
}

function table (header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)))
  // The first column is text (left-aligned); the others are numbers (right-aligned).
  const line = (cells: string[]) => cells.map((cell, column) => column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)).join('  ').trimEnd()
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n')
}

function int (value: number): string {
  return Math.round(value).toLocaleString('en-US')
}

function ms (value: number): string {
  return value >= 10 ? value.toFixed(1) : value.toFixed(2)
}

function mb (bytes: number): string {
  return (bytes / MB).toFixed(0)
}
