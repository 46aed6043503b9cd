// One task: state, error and its meaning, prompt, metadata, reference image, the video, the timeline, actions, deliveries.
import { useEffect, useState } from 'preact/hooks'
import { api, apiBase, readEventStream, type Me, type TaskDetail } from '../api.js'
import { hasRoute } from '../features.js'
import { duration, FINISHED, time } from '../format.js'
import { explain } from '../minimax-codes.js'
import { DeliveryList } from './deliveries.js'
import { StatusBadge } from './tasks.js'

// The reconciler fetches the link within a tick or two of the success; a minute covers a spent call budget.
const VIDEO_LINK_POLL_MS = 1000
const VIDEO_LINK_TRIES = 60

function curlOf (task: TaskDetail): string {
  return `curl -s ${apiBase}/v1/tasks/${task.id} -H "authorization: Bearer $S2V_TOKEN"`
}

function Timeline ({ task }: { task: TaskDetail }) {
  const refused = task.events.filter((e) => e.outcome === 'refused').length
  const start = Date.parse(task.created_at)
  return (
    <>
      <h2>Timeline <span class='muted'>({task.events_total !== undefined && task.events_total > task.events.length ? `the latest ${task.events.length} of ${task.events_total}` : task.events.length} events{refused > 0 ? `, ${refused} refused pushes` : ''})</span></h2>
      <ol class='timeline'>
        {task.events.map((event, i) => (
          <li key={i} class={`outcome-${event.outcome}`}>
            <time dateTime={event.at}>{time(event.at)}</time>
            <span class='muted'> +{duration(Date.parse(event.at) - start)}</span>
            <span class='source'>{event.source}</span>
            {event.status ? <StatusBadge status={event.status} /> : <span class='muted'>no status</span>}
            {event.provider_status && <code class='muted'>{event.provider_status}</code>}
            <span class={`outcome ${event.outcome}`}>{event.outcome}</span>
          </li>
        ))}
      </ol>
    </>
  )
}

function Player ({ task }: { task: TaskDetail }) {
  const video = task.video
  if (!video) return <p class='muted'>{FINISHED.has(task.status) ? 'No video.' : 'The video appears here once the task succeeds.'}</p>
  // A <video> element cannot send a bearer header: it plays a short-lived signed link (ours when the service has
  // them, else the provider's own signed download URL).
  const src = video.download_url ?? video.url
  return (
    <figure class='player'>
      <video controls preload='metadata' playsInline src={src} aria-label='The generated video' />
      <figcaption class='muted'>
        {video.width && video.height ? `${video.width}×${video.height} · ` : ''}
        link valid until {time(video.expires_at)}
        {video.archive ? ` · our copy: ${video.archive.state}${video.archive.bytes ? ` (${video.archive.bytes} bytes)` : ''}` : ''}
        {' · '}<a href={src} download>download</a>
      </figcaption>
    </figure>
  )
}

export function TaskPage ({ id, me }: { id: string, me: Me }) {
  const [task, setTask] = useState<TaskDetail | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [notice, setNotice] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [canCancel, setCanCancel] = useState(false)

  const load = async () => {
    try {
      setTask(await api<TaskDetail>(`/v1/tasks/${encodeURIComponent(id)}`))
      setError(null)
    } catch (err) {
      setError((err as Error).message)
    }
  }

  useEffect(() => {
    setTask(null)
    load().catch(() => {})
    hasRoute('POST', '/v1/tasks/{id}/cancel').then(setCanCancel)
    // Each status change reloads the task, so the timeline and the video appear without a reload.
    const controller = new AbortController()
    readEventStream(`/v1/tasks/${encodeURIComponent(id)}/events`, { onEvent: () => { load().catch(() => {}) } }, controller.signal)
    return () => controller.abort()
  }, [id])

  // The video link is fetched just after the success (no status change announces it): look again until it is there.
  const awaitingVideo = task?.status === 'success' && !task.video
  useEffect(() => {
    if (!awaitingVideo) return
    let tries = 0
    const timer = setInterval(() => {
      if (++tries > VIDEO_LINK_TRIES) clearInterval(timer)
      else load().catch(() => {})
    }, VIDEO_LINK_POLL_MS)
    return () => clearInterval(timer)
  }, [awaitingVideo, id])

  const act = async (label: string, fn: () => Promise<unknown>) => {
    setBusy(true)
    setNotice(null)
    try {
      await fn()
      setNotice(`${label}: done.`)
    } catch (err) {
      setNotice(`${label}: ${(err as Error).message}`)
    } finally {
      setBusy(false)
    }
  }
  const refresh = () => act('Refresh', async () => setTask(await api<TaskDetail>(`/v1/tasks/${encodeURIComponent(id)}/refresh`, { method: 'POST' })))
  const cancel = () => act('Cancel', async () => { await api(`/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: 'POST' }); await load() })
  const copy = () => act('Copy curl', async () => {
    if (!task) return
    await navigator.clipboard.writeText(curlOf(task))
  })

  if (error && !task) return <section><h1>Task <code>{id}</code></h1><p class='error' role='alert'>{error}</p><p><a href='#/tasks'>All tasks</a></p></section>
  if (!task) return <section><h1>Task</h1><p aria-live='polite'>Loading…</p></section>
  const meaning = task.error ? explain(task.error.code) : undefined
  return (
    <section>
      <p><a href='#/tasks'>← Tasks</a></p>
      <h1>Task <code>{task.id}</code></h1>
      <div class='task-head'>
        <span aria-live='polite' data-testid='task-status'><StatusBadge status={task.status} /></span>
        {task.queue && <span>queue position {task.queue.position}{task.queue.eta_s !== null ? `, about ${duration(task.queue.eta_s * 1000)}` : ''}</span>}
        <div class='actions'>
          <button type='button' onClick={refresh} disabled={busy}>Refresh now</button>
          {canCancel && task.status === 'queued' && <button type='button' class='danger' onClick={cancel} disabled={busy}>Cancel</button>}
          <button type='button' onClick={copy} disabled={busy}>Copy curl</button>
        </div>
      </div>
      {notice && <p class='notice' role='status'>{notice}</p>}
      <label class='curl'><span class='sr-only'>curl of the lookup</span><input readOnly value={curlOf(task)} onFocus={(e) => (e.target as HTMLInputElement).select()} /></label>
      {task.error && (
        <div class='card error-card' role='note'>
          <h2>Error <code>{task.error.code}</code></h2>
          <p>{task.error.message}</p>
          {meaning && <p><strong>{meaning.meaning}.</strong> Retry: {meaning.retry}.</p>}
        </div>
      )}
      <div class='grid'>
        <div>
          <h2>Video</h2>
          <Player task={task} />
          <h2>Prompt</h2>
          <p class='prompt'>{task.prompt ?? <span class='muted'>none</span>}</p>
        </div>
        <div>
          <h2>Details</h2>
          <dl class='details'>
            <dt>MiniMax task_id</dt><dd><code>{task.task_id ?? '–'}</code></dd>
            <dt>Provider</dt><dd>{task.provider} · {task.model}</dd>
            {task.caller && <><dt>Caller</dt><dd>{task.caller}</dd></>}
            <dt>Provider status</dt><dd>{task.provider_status ?? '–'}</dd>
            <dt>File id</dt><dd><code>{task.file_id ?? '–'}</code></dd>
            <dt>Submitted</dt><dd>{time(task.created_at)}</dd>
            <dt>Last change</dt><dd>{time(task.updated_at)}</dd>
          </dl>
          <h2>Metadata</h2>
          {task.metadata ? <pre class='json'>{JSON.stringify(task.metadata, null, 2)}</pre> : <p class='muted'>none</p>}
          <h2>Reference image</h2>
          {task.image_url
            ? <a href={task.image_url} target='_blank' rel='noreferrer noopener'><img class='reference' src={task.image_url} alt='The subject reference image' referrerPolicy='no-referrer' /></a>
            : <p class='muted'>{task.image_url === null ? 'Sent as a data URL; the service does not keep the image.' : 'not shown'}</p>}
        </div>
      </div>
      <Timeline task={task} />
      <h2>Deliveries</h2>
      <DeliveryList task={task.id} />
    </section>
  )
}
