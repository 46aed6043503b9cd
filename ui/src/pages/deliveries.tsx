// Notification deliveries, per task or across tasks: state, attempts, next retry; replay one or many dead ones.
import { useEffect, useState } from 'preact/hooks'
import { api, type Delivery, type Me, type Page } from '../api.js'
import { shortId, time } from '../format.js'
import { navigate, type Route } from '../router.js'

const STATES = ['pending', 'delivered', 'failed']
const PAGE_SIZE = 20

export function DeliveryList ({ task, state }: { task?: string, state?: string }) {
  const [cursor, setCursor] = useState<string | undefined>(undefined)
  const [history, setHistory] = useState<Array<string | undefined>>([])
  const [page, setPage] = useState<Page<Delivery> | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const [notice, setNotice] = useState<string | null>(null)
  const [reload, setReload] = useState(0)

  const params = new URLSearchParams({ limit: String(PAGE_SIZE) })
  if (task) params.set('task', task)
  if (state) params.set('state', state)
  if (cursor) params.set('cursor', cursor)
  const path = `/v1/deliveries?${params.toString()}`

  useEffect(() => { setCursor(undefined); setHistory([]) }, [task, state])
  useEffect(() => {
    let stopped = false
    api<Page<Delivery>>(path).then((next) => { if (!stopped) { setPage(next); setError(null) } }, (err: Error) => { if (!stopped) setError(err.message) })
    return () => { stopped = true }
  }, [path, reload])

  const replay = async (ids: string[]) => {
    setNotice(null)
    const results = await Promise.allSettled(ids.map(async (id) => await api<Delivery>(`/v1/deliveries/${id}/retry`, { method: 'POST' })))
    const failed = results.flatMap((r, i) => r.status === 'rejected' ? [`${ids[i]}: ${(r.reason as Error).message}`] : [])
    setNotice(`${ids.length - failed.length} of ${ids.length} replayed.${failed.length ? ` ${failed.join('; ')}` : ''}`)
    setSelected(new Set())
    setReload((n) => n + 1)
  }
  const toggle = (id: string) => setSelected((current) => {
    const next = new Set(current)
    if (next.has(id)) next.delete(id)
    else next.add(id)
    return next
  })

  if (error) return <p class='error' role='alert'>{error}</p>
  if (!page) return <p aria-live='polite'>Loading…</p>
  const dead = page.items.filter((d) => d.state === 'failed')
  return (
    <div class='deliveries'>
      {notice && <p class='notice' role='status'>{notice}</p>}
      {dead.length > 0 && (
        <div class='bulk'>
          <button type='button' disabled={selected.size === 0} onClick={() => replay([...selected])}>Replay selected ({selected.size})</button>
          <button type='button' onClick={() => replay(dead.map((d) => d.id))}>Replay every failed one on this page ({dead.length})</button>
        </div>
      )}
      {page.items.length === 0 && <p class='muted'>No deliveries{task ? ' for this task (it has no notify_url and NOTIFY_URL is not set)' : ''}.</p>}
      <ul class='delivery-list'>
        {page.items.map((d) => (
          <li key={d.id} class={`delivery ${d.state}`} data-delivery={d.id}>
            <div class='delivery-head'>
              {d.state === 'failed' && (
                <input type='checkbox' id={`sel-${d.id}`} checked={selected.has(d.id)} onChange={() => toggle(d.id)} aria-label={`Select ${d.id} for replay`} />
              )}
              <span class={`badge ${d.state}`}>{d.state}</span>
              <code>{d.id}</code>
              <span>announces <span class={`badge ${d.status}`}>{d.status}</span></span>
              {!task && <a href={`#/tasks/${d.task}`}>task <code>{shortId(d.task)}</code></a>}
              {d.state === 'failed' && <button type='button' class='small' onClick={() => replay([d.id])}>Replay</button>}
            </div>
            <div class='muted delivery-meta'>
              <span class='url'>{d.url}</span>
              {d.dead_reason && <> · dead: {d.dead_reason}</>}
              {d.next_attempt_at && <> · next attempt {time(d.next_attempt_at)}</>}
              {d.delivered_at && <> · delivered {time(d.delivered_at)}</>}
            </div>
            {d.attempts.length > 0 && (
              <details>
                <summary>{d.attempts.length} attempt{d.attempts.length === 1 ? '' : 's'}</summary>
                <table class='attempts'>
                  <thead><tr><th scope='col'>When</th><th scope='col'>HTTP</th><th scope='col'>Latency</th><th scope='col'>Error</th></tr></thead>
                  <tbody>
                    {d.attempts.map((a, i) => (
                      <tr key={i}><td>{time(a.at)}</td><td>{a.status_code ?? '–'}</td><td>{a.latency_ms} ms</td><td>{a.error ?? ''}</td></tr>
                    ))}
                  </tbody>
                </table>
              </details>
            )}
          </li>
        ))}
      </ul>
      {(cursor || page.next_cursor) && (
        <nav class='pager' aria-label='Delivery pages'>
          <button type='button' disabled={!cursor} onClick={() => { const rest = history.slice(0, -1); setCursor(history.at(-1)); setHistory(rest) }}>← Newer</button>
          <button type='button' disabled={!page.next_cursor} onClick={() => { setHistory([...history, cursor]); setCursor(page.next_cursor ?? undefined) }}>Older →</button>
        </nav>
      )}
    </div>
  )
}

export function Deliveries ({ route, me }: { route: Route, me: Me }) {
  const state = route.query.get('state') ?? ''
  const task = route.query.get('task') ?? ''
  return (
    <section>
      <h1>Deliveries</h1>
      <p class='muted'>{me.admin ? 'Every caller\'s notifications.' : `Notifications about the tasks of ${me.caller}.`} Failed ones are dead: nothing more is tried until they are replayed.</p>
      <form class='filters' role='search' onSubmit={(e) => { e.preventDefault(); navigate('deliveries', { state, task: String(new FormData(e.target as HTMLFormElement).get('task') ?? '').trim() }) }}>
        <div class='field'>
          <label for='d-state'>State</label>
          <select id='d-state' value={state} onChange={(e) => navigate('deliveries', { state: (e.target as HTMLSelectElement).value, task })}>
            <option value=''>any</option>
            {STATES.map((s) => <option key={s} value={s}>{s === 'failed' ? 'failed (dead)' : s}</option>)}
          </select>
        </div>
        <div class='field grow'>
          <label for='d-task'>Task</label>
          <input id='d-task' name='task' defaultValue={task} placeholder='our id or MiniMax task_id' />
        </div>
        <button type='submit'>Show</button>
      </form>
      <DeliveryList state={state || undefined} task={task || undefined} />
    </section>
  )
}
