// Small formatting helpers shared by the pages.

export function shortId (id: string): string { return id.slice(0, 8) }

export function duration (ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–'
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h} h ${m % 60} min`
  return `${Math.floor(h / 24)} d`
}

export function age (iso: string, now = Date.now()): string { return duration(now - Date.parse(iso)) }

export function time (iso: string | null | undefined): string {
  if (!iso) return '–'
  const d = new Date(iso)
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 23)}`
}

export function excerpt (text: string | null | undefined, max = 60): string {
  if (!text) return ''
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

export function percent (ratio: number | null): string { return ratio === null ? '–' : `${(ratio * 100).toFixed(1)} %` }

export const FINISHED = new Set(['success', 'failed'])
export const STATUSES = ['queued', 'submitting', 'processing', 'success', 'failed']
export const PROVIDERS = ['minimax', 'modellix']
