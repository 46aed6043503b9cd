// Parses --timeout values: plain seconds ("90"), or with a unit ("90s", "5m", "2h", "1500ms").
import { usageError } from './exit-codes.js'

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

export function parseDurationMs (value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim())
  if (match === null) throw usageError(`not a duration: ${value} (e.g. 90, 90s, 5m, 2h)`)
  const ms = Number(match[1]) * UNIT_MS[match[2] ?? 's']!
  if (!(ms > 0)) throw usageError(`the duration must be above zero: ${value}`)
  return Math.round(ms)
}

export function formatElapsed (ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`
}

export function formatBytes (bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}
