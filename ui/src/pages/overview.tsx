// The landing page: tasks by status, the last 24 h as a chart, timings, budgets, deliveries, challenge latency.
import { useEffect, useState } from 'preact/hooks'
import { api, type Me, type Stats } from '../api.js'
import { hasRoute } from '../features.js'
import { duration, percent } from '../format.js'

// Often enough to feel current, rarely enough to cost nothing (the numbers come from a few indexed reads).
const REFRESH_MS = 10_000

type Quota = Record<string, unknown>

function Card ({ label, value, hint, tone }: { label: string, value: string, hint?: string, tone?: 'bad' | 'good' }) {
  return (
    <div class={`stat ${tone ?? ''}`}>
      <div class='stat-label'>{label}</div>
      <div class='stat-value'>{value}</div>
      {hint && <div class='stat-hint'>{hint}</div>}
    </div>
  )
}

/** Stacked bars, one per hour: success, failed and still running. SVG, so no script or style is inlined. */
function HourChart ({ hours }: { hours: Stats['last_24h']['hours'] }) {
  const width = 720
  const height = 180
  const pad = { left: 32, bottom: 22, top: 8 }
  const max = Math.max(1, ...hours.map((h) => h.success + h.failed + h.running))
  const slot = (width - pad.left) / hours.length
  const scale = (n: number) => (n / max) * (height - pad.top - pad.bottom)
  const summary = hours.map((h) => `${h.hour.slice(11, 13)}h: ${h.success} succeeded, ${h.failed} failed, ${h.running} running`).join('; ')
  return (
    <figure class='chart'>
      <svg viewBox={`0 0 ${width} ${height}`} role='img' aria-label={`Tasks per hour over the last 24 hours. ${summary}`}>
        <line x1={pad.left} x2={width} y1={height - pad.bottom} y2={height - pad.bottom} class='axis' />
        <text x={pad.left - 6} y={pad.top + 8} class='tick' text-anchor='end'>{max}</text>
        <text x={pad.left - 6} y={height - pad.bottom} class='tick' text-anchor='end'>0</text>
        {hours.map((h, i) => {
          const x = pad.left + i * slot + 2
          const w = Math.max(slot - 4, 1)
          let y = height - pad.bottom
          const parts = [['success', h.success], ['failed', h.failed], ['running', h.running]] as const
          return (
            <g key={h.hour}>
              <title>{`${h.hour.slice(11, 16)} UTC: ${h.success} succeeded, ${h.failed} failed, ${h.running} running`}</title>
              {parts.map(([kind, n]) => {
                const barHeight = scale(n)
                y -= barHeight
                return n > 0 ? <rect key={kind} x={x} y={y} width={w} height={barHeight} class={`bar ${kind}`} /> : null
              })}
              {i % 3 === 0 && <text x={x + w / 2} y={height - 6} class='tick' text-anchor='middle'>{h.hour.slice(11, 13)}h</text>}
            </g>
          )
        })}
      </svg>
      <figcaption>
        <span class='key success'>succeeded</span> <span class='key failed'>failed</span> <span class='key running'>running</span>
        <span class='muted'> · by hour of submission, UTC</span>
      </figcaption>
    </figure>
  )
}

export function Overview ({ me }: { me: Me }) {
  const [stats, setStats] = useState<Stats | null>(null)
  const [quota, setQuota] = useState<Quota | null>(null)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    let stopped = false
    const load = async () => {
      try {
        const next = await api<Stats>('/v1/stats')
        if (stopped) return
        setStats(next)
        setError(null)
      } catch (err) {
        if (!stopped) setError((err as Error).message)
      }
      // The submit queue's quota route exists on services with a queue; elsewhere it is simply not shown.
      if (await hasRoute('GET', '/v1/quota')) {
        try {
          const next = await api<Quota>('/v1/quota')
          if (!stopped) setQuota(next)
        } catch {
          if (!stopped) setQuota(null)
        }
      }
    }
    load().catch(() => {})
    const timer = setInterval(() => { load().catch(() => {}) }, REFRESH_MS)
    return () => { stopped = true; clearInterval(timer) }
  }, [])

  if (!stats) return <section><h1>Overview</h1>{error ? <p class='error' role='alert'>{error}</p> : <p aria-live='polite'>Loading…</p>}</section>
  const { tasks, last_24h: day, challenge } = stats
  return (
    <section>
      <h1>Overview</h1>
      <p class='muted'>{stats.scope === 'all' ? 'Every caller\'s tasks.' : `Tasks of ${me.caller}.`} Updated {stats.generated_at.slice(11, 19)} UTC, every 10 s.</p>
      {error && <p class='error' role='alert'>{error}</p>}
      <h2>Tasks now</h2>
      <div class='stats'>
        {Object.entries(tasks.by_status).map(([status, n]) => (
          <a key={status} class='stat link-card' href={`#/tasks?status=${status}`}>
            <div class='stat-label'><span class={`badge ${status}`}>{status}</span></div>
            <div class='stat-value'>{n}</div>
          </a>
        ))}
        <Card label='total' value={String(tasks.total)} />
      </div>
      <h2>Last 24 hours</h2>
      <div class='stats'>
        <Card label='submitted' value={String(day.created)} />
        <Card label='success rate' value={percent(day.success_rate)} hint={`${day.succeeded} succeeded, ${day.failed} failed`} tone={day.success_rate !== null && day.success_rate < 0.9 ? 'bad' : undefined} />
        <Card label='submit → success, median' value={duration(day.submit_to_success.median_ms)} hint={`${day.submit_to_success.count} measured`} />
        <Card label='submit → success, p95' value={duration(day.submit_to_success.p95_ms)} />
      </div>
      <HourChart hours={day.hours} />
      <h2>Service</h2>
      <div class='stats'>
        <Card label='queue depth' value={stats.queue ? String(stats.queue.depth) : '–'} hint={stats.queue ? 'tasks waiting to be sent' : 'this service has no submit queue'} />
        {stats.providers.map((p) => (
          <Card key={p.provider} label={`${p.provider} call budget`} value={`${p.used} / ${p.per_minute}`} hint='polls in the last minute' tone={p.used >= p.per_minute ? 'bad' : undefined} />
        ))}
        <Card label='deliveries failing' value={String(stats.deliveries.dead)} hint={`${stats.deliveries.retrying} retrying, ${stats.deliveries.pending} pending`} tone={stats.deliveries.dead > 0 ? 'bad' : 'good'} />
        <Card
          label='challenge answer, p95'
          value={challenge.p95_ms === null ? '–' : `${challenge.p95_ms.toFixed(2)} ms`}
          hint={challenge.count === 0 ? 'no challenge since start' : `${challenge.count} answered, median ${challenge.p50_ms?.toFixed(2)} ms, ${challenge.over_1s} over 1 s`}
          tone={challenge.over_1s > 0 ? 'bad' : undefined}
        />
      </div>
      {quota && (
        <>
          <h2>Quota</h2>
          <pre class='json'>{JSON.stringify(quota, null, 2)}</pre>
        </>
      )}
    </section>
  )
}
