// The tasks table: filters, search, cursor paging, rows that change live (GET /v1/events).
import { useEffect, useRef, useState } from 'preact/hooks'
import { api, readEventStream, type Me, type Page, type Task } from '../api.js'
import { age, duration, excerpt, FINISHED, PROVIDERS, shortId, STATUSES } from '../format.js'
import { navigate, type Route } from '../router.js'

const PAGE_SIZE = 20

type Filters = { status: string, provider: string, caller: string, q: string }

function filtersOf (query: URLSearchParams): Filters {
  return { status: query.get('status') ?? '', provider: query.get('provider') ?? '', caller: query.get('caller') ?? '', q: query.get('q') ?? '' }
}

function listPath (filters: Filters, cursor: string | undefined): string {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) })
  for (const [key, value] of Object.entries(filters)) if (value) params.set(key, value)
  if (cursor) params.set('cursor', cursor)
  return `/v1/tasks?${params.toString()}`
}

/** Whether a task pushed by the live feed belongs on the first page of this filtered view. */
function matches (task: Task, filters: Filters): boolean {
  if (filters.q) return task.id === filters.q || task.id.startsWith(filters.q) || task.task_id === filters.q
  return (!filters.status || task.status === filters.status) && (!filters.provider || task.provider === filters.provider) &&
    (!filters.caller || task.caller === filters.caller)
}

/**
 * The first page with a task that is not on it put where the list's order (newest submit first) puts it, or null when
 * it belongs on a later page: an old task that changes (a late push, the reconciler) stays where it is in the list
 * instead of jumping to the top.
 */
function placedByAge (items: Task[], task: Task): Task[] | null {
  const index = items.findIndex((item) => item.created_at < task.created_at)
  if (index < 0 && items.length >= PAGE_SIZE) return null
  const placed = items.slice()
  placed.splice(index < 0 ? items.length : index, 0, task)
  return placed.slice(0, PAGE_SIZE)
}

export function StatusBadge ({ status }: { status: string }) {
  return <span class={`badge ${status}`}>{status}</span>
}

export function Tasks ({ route, me }: { route: Route, me: Me }) {
  const filters = filtersOf(route.query)
  const cursor = route.query.get('cursor') ?? undefined
  const [page, setPage] = useState<Page<Task> | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [live, setLive] = useState(false)
  const [now, setNow] = useState(Date.now())
  // The cursors of the pages before this one, for "Newer".
  const history = useRef<string[]>([])
  const key = listPath(filters, cursor)

  useEffect(() => {
    let stopped = false
    setError(null)
    api<Page<Task>>(key).then((next) => { if (!stopped) setPage(next) }, (err: Error) => { if (!stopped) setError(err.message) })
    return () => { stopped = true }
  }, [key])

  // Live rows: every status change of a visible task replaces its row; a task not shown that now belongs on the first
  // page (a new one, or one that now matches the filters) joins it in its place.
  useEffect(() => {
    const controller = new AbortController()
    readEventStream('/v1/events', {
      onOpen: () => setLive(true),
      onEvent: (event, data) => {
        if (event !== 'status') return
        const task = JSON.parse(data) as Task
        setPage((current) => {
          if (!current) return current
          const index = current.items.findIndex((item) => item.id === task.id)
          if (index >= 0) {
            const items = current.items.slice()
            items[index] = task
            return { ...current, items }
          }
          if (cursor || !matches(task, filters)) return current
          const items = placedByAge(current.items, task)
          return items === null ? current : { ...current, items }
        })
      }
    }, controller.signal).finally(() => setLive(false))
    return () => controller.abort()
  }, [key])

  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000)
    return () => clearInterval(timer)
  }, [])

  const apply = (next: Partial<Filters>) => {
    history.current = []
    navigate('tasks', { ...filters, ...next })
  }
  const onSearch = (event: Event) => {
    event.preventDefault()
    const form = new FormData(event.target as HTMLFormElement)
    apply({ q: String(form.get('q') ?? '').trim(), caller: String(form.get('caller') ?? '').trim() })
  }

  return (
    <section>
      <h1>Tasks</h1>
      <form class='filters' onSubmit={onSearch} role='search'>
        <div class='field'>
          <label for='f-status'>Status</label>
          <select id='f-status' value={filters.status} onChange={(e) => apply({ status: (e.target as HTMLSelectElement).value })}>
            <option value=''>any</option>
            {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </div>
        <div class='field'>
          <label for='f-provider'>Provider</label>
          <select id='f-provider' value={filters.provider} onChange={(e) => apply({ provider: (e.target as HTMLSelectElement).value })}>
            <option value=''>any</option>
            {PROVIDERS.map((p) => <option key={p} value={p}>{p}</option>)}
          </select>
        </div>
        {me.admin && (
          <div class='field'>
            <label for='f-caller'>Caller</label>
            <input id='f-caller' name='caller' defaultValue={filters.caller} placeholder='team-a' />
          </div>
        )}
        <div class='field grow'>
          <label for='f-q'>Search</label>
          <input id='f-q' name='q' type='search' defaultValue={filters.q} placeholder='our id, MiniMax task_id or a metadata value' />
        </div>
        <button type='submit'>Search</button>
        <span class={`live ${live ? 'on' : ''}`} aria-live='polite'>{live ? '● live' : '○ connecting'}</span>
      </form>
      {error && <p class='error' role='alert'>{error}</p>}
      {!page && !error && <p aria-live='polite'>Loading…</p>}
      {page && (
        <>
          <div class='table-wrap'>
            <table class='tasks'>
              <caption class='sr-only'>Tasks, newest first</caption>
              <thead>
                <tr>
                  <th scope='col'>Id</th>
                  <th scope='col'>MiniMax task_id</th>
                  <th scope='col'>Status</th>
                  {me.admin && <th scope='col'>Caller</th>}
                  <th scope='col'>Provider</th>
                  <th scope='col' class='wide'>Prompt</th>
                  <th scope='col'>Age</th>
                  <th scope='col'>Duration</th>
                </tr>
              </thead>
              <tbody>
                {page.items.length === 0 && <tr><td colSpan={8} class='empty'>No task matches.</td></tr>}
                {page.items.map((task) => (
                  <tr key={task.id} data-task={task.id} data-status={task.status}>
                    <td><a href={`#/tasks/${task.id}`} title={task.id}><code>{shortId(task.id)}</code></a></td>
                    <td><code>{task.task_id ?? '–'}</code></td>
                    <td><StatusBadge status={task.status} />{task.error && <span class='muted'> {task.error.code}</span>}</td>
                    {me.admin && <td>{task.caller ?? '–'}</td>}
                    <td>{task.provider}</td>
                    <td class='wide'>{excerpt(task.prompt)}</td>
                    <td><time dateTime={task.created_at} title={task.created_at}>{age(task.created_at, now)}</time></td>
                    <td>{duration((FINISHED.has(task.status) ? Date.parse(task.updated_at) : now) - Date.parse(task.created_at))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav class='pager' aria-label='Pages'>
            <button type='button' disabled={!cursor} onClick={() => { const previous = history.current.pop(); navigate('tasks', { ...filters, cursor: previous }) }}>← Newer</button>
            <button type='button' disabled={!page.next_cursor} onClick={() => { history.current.push(cursor ?? ''); navigate('tasks', { ...filters, cursor: page.next_cursor ?? undefined }) }}>Older →</button>
          </nav>
        </>
      )}
    </section>
  )
}
