// The s2v commands: each one parses nothing itself (commander does), calls the API, and shapes the result for people or --json.
import { basename } from 'node:path'
import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ApiClient } from './client.js'
import { downloadVideo, type Downloaded } from './download.js'
import { formatElapsed } from './duration.js'
import { CliError, EXIT, usageError } from './exit-codes.js'
import { getTask, waitForTask, watchTask } from './follow.js'
import { isRemoteImage, readLocalImage } from './image.js'
import { describeTask, type Output, statusColour, type Task } from './output.js'
import { configFileMode, configPath, readStoredConfig, writeStoredConfig, normaliseUrl, type Env, type Settings } from './settings.js'

export type Context = { client: ApiClient, out: Output, signal: AbortSignal, settings: Settings, env: Env }

type SubmitAnswer = { id: string, task_id: string | null, status: string, queue?: { position: number, eta_s: number | null }, base_resp?: { status_code: number, status_msg: string } }
type Page<T> = { items: T[], next_cursor: string | null }

const path = (id: string, suffix = '') => `/v1/tasks/${encodeURIComponent(id)}${suffix}`

/** The task in a few lines for a person. */
function taskLines (out: Output, task: Task): string[] {
  const c = out.colors
  const lines = [
    `${c.bold(task.id)}  ${statusColour(c, task.status)}`,
    `  provider     ${task.provider}${task.task_id ? ` (task ${task.task_id})` : ''}${task.provider_status ? `, says ${task.provider_status}` : ''}`
  ]
  if (task.queue) lines.push(`  queue        #${task.queue.position}${task.queue.eta_s === null ? '' : `, eta ${formatElapsed(task.queue.eta_s * 1000)}`}`)
  if (typeof task.prompt === 'string') lines.push(`  prompt       ${task.prompt}`)
  if (typeof task.caller === 'string') lines.push(`  caller       ${task.caller}`)
  lines.push(`  created      ${task.created_at}`, `  updated      ${task.updated_at}`)
  if (task.error) lines.push(`  error        ${errorText(task.error)}`)
  if (task.video) lines.push(`  video        s2v download ${task.id}   (link valid until ${task.video.expires_at})`)
  return lines
}

function errorText (error: { code: string, message: string }): string {
  // MiniMax's own codes are numeric: say whose code it is.
  return /^\d+$/.test(error.code) ? `MiniMax code ${error.code}: ${error.message}` : `${error.code}: ${error.message}`
}

/** The exit status of a finished task: a failed task is a distinct failure for scripts. */
function finishedOrThrow (task: Task): void {
  if (task.status === 'failed') {
    const minimax = task.error && /^\d+$/.test(task.error.code) ? { minimax_code: Number(task.error.code) } : {}
    throw new CliError(EXIT.taskFailed, `task ${task.id} failed${task.error ? `: ${errorText(task.error)}` : ''}`, { code: 'task_failed', id: task.id, task_error: task.error, ...minimax, task })
  }
}

async function followWithDisplay (ctx: Context, id: string, timeoutMs: number | undefined, first?: Task): Promise<Task> {
  const live = ctx.out.liveTask(id)
  try {
    const task = await waitForTask(ctx.client, id, { timeoutMs, signal: ctx.signal, onUpdate: t => live.update(t) }, first)
    live.stop()
    return task
  } catch (err) {
    live.stop(err instanceof CliError ? `stopped: ${err.details.code as string}` : 'stopped')
    throw err
  }
}

export function parseMetadata (pairs: string[] | undefined): Record<string, string> | undefined {
  if (pairs === undefined || pairs.length === 0) return undefined
  const metadata: Record<string, string> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw usageError(`--metadata takes key=value, got: ${pair}`)
    metadata[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return metadata
}

export type SubmitOptions = {
  image: string
  prompt?: string
  metadata?: string[]
  idempotencyKey?: string
  notifyUrl?: string
  provider?: string
  wait?: boolean
  out?: string
  timeoutMs?: number
}

export async function submit (ctx: Context, opts: SubmitOptions): Promise<void> {
  const image = isRemoteImage(opts.image) ? opts.image : (await readLocalImage(opts.image)).dataUrl
  const body = {
    model: 'S2V-01',
    ...(opts.prompt === undefined ? {} : { prompt: opts.prompt }),
    subject_reference: [{ type: 'character', image: [image] }],
    ...(opts.provider === undefined ? {} : { provider: opts.provider }),
    ...(opts.notifyUrl === undefined ? {} : { notify_url: opts.notifyUrl }),
    ...(parseMetadata(opts.metadata) === undefined ? {} : { metadata: parseMetadata(opts.metadata) })
  }
  const headers = opts.idempotencyKey === undefined ? undefined : { 'idempotency-key': opts.idempotencyKey }
  const { body: answer, headers: resHeaders } = await ctx.client.json<SubmitAnswer>('POST', '/v1/video_generation', { body, headers, signal: ctx.signal })
  const replayed = resHeaders.get('idempotent-replayed') === 'true'
  // --out needs the finished video, so it implies --wait.
  if (!opts.wait && opts.out === undefined) {
    ctx.out.info(`submitted ${answer.id}: ${answer.status}${answer.queue ? ` (queue #${answer.queue.position})` : ''}${replayed ? ' (replayed: same Idempotency-Key)' : ''}; follow it with: s2v wait ${answer.id}`)
    // The id alone on stdout, so `id=$(s2v submit ...)` works.
    ctx.out.result(answer, () => answer.id)
    return
  }
  ctx.out.info(`submitted ${answer.id}${replayed ? ' (replayed: same Idempotency-Key)' : ''}`)
  const task = await followWithDisplay(ctx, answer.id, opts.timeoutMs)
  finishedOrThrow(task)
  let downloaded: Downloaded | undefined
  if (opts.out !== undefined) downloaded = await downloadWhenReady(ctx, task, opts.out)
  ctx.out.result({ ...task, ...(downloaded ? { downloaded } : {}) }, () => [...taskLines(ctx.out, task), ...(downloaded ? [`  saved        ${downloaded.path} (${downloaded.bytes} bytes)`] : [])])
}

export async function status (ctx: Context, id: string): Promise<void> {
  const task = await getTask(ctx.client, id, ctx.signal)
  ctx.out.result(task, () => taskLines(ctx.out, task))
}

export async function list (ctx: Context, opts: { status?: string, limit?: number, cursor?: string }): Promise<void> {
  const { body } = await ctx.client.json<Page<Task>>('GET', '/v1/tasks', { query: { status: opts.status, limit: opts.limit, cursor: opts.cursor }, signal: ctx.signal })
  ctx.out.result(body, () => {
    if (body.items.length === 0) return ['no tasks']
    const rows = body.items.map(t => `${t.id}  ${statusColour(ctx.out.colors, t.status.padEnd(10))}  ${t.created_at}  ${(typeof t.prompt === 'string' ? t.prompt : '').slice(0, 40)}`)
    if (body.next_cursor !== null) rows.push(`more: s2v list${opts.status ? ` --status ${opts.status}` : ''} --cursor ${body.next_cursor}`)
    return rows
  })
}

export async function wait (ctx: Context, id: string, timeoutMs: number | undefined): Promise<void> {
  const task = await followWithDisplay(ctx, id, timeoutMs)
  finish(ctx, task, task)
}

/** Prints the result, except with --json for a failed task: then the error document (which carries the task) is the one document. */
function finish (ctx: Context, task: Task, document: unknown): void {
  if (task.status !== 'failed' || !ctx.out.json) ctx.out.result(document, () => taskLines(ctx.out, task))
  finishedOrThrow(task)
}

export async function watch (ctx: Context, id: string, timeoutMs: number | undefined): Promise<void> {
  const live = ctx.out.liveTask(id)
  let result
  try {
    result = await watchTask(ctx.client, id, { timeoutMs, signal: ctx.signal, onUpdate: t => live.update(t) })
    live.stop()
  } catch (err) {
    live.stop(err instanceof CliError ? `stopped: ${err.details.code as string}` : 'stopped')
    throw err
  }
  finish(ctx, result.task, result)
}

type HistoryItem = { at: string, source: string, status: string | null, provider_status: string | null, outcome: string }

export async function history (ctx: Context, id: string, opts: { limit?: number }): Promise<void> {
  const items: HistoryItem[] = []
  let cursor: string | undefined
  // Every page, oldest first, unless --limit caps the total.
  do {
    const pageSize = opts.limit === undefined ? 100 : Math.min(100, opts.limit - items.length)
    const { body } = await ctx.client.json<Page<HistoryItem>>('GET', path(id, '/history'), { query: { limit: pageSize, cursor }, signal: ctx.signal })
    items.push(...body.items)
    cursor = body.next_cursor ?? undefined
  } while (cursor !== undefined && (opts.limit === undefined || items.length < opts.limit))
  ctx.out.result({ items, next_cursor: cursor ?? null }, () => items.length === 0
    ? ['no events']
    : items.map(e => `${e.at}  ${e.source.padEnd(8)}  ${(e.status ?? '-').padEnd(10)}  ${(e.provider_status ?? '-').padEnd(10)}  ${e.outcome}`))
}

// The link of a video is fetched from the provider just after the task succeeds: ask again this often, this long.
const VIDEO_LINK_POLL_MS = 500
const VIDEO_LINK_WAIT_MS = 60_000

/** Downloads once the service knows the video's link (a moment after success); a task not successful is refused as the API does. */
async function downloadWhenReady (ctx: Context, first: Task, file: string): Promise<Downloaded> {
  let task = first
  const deadline = Date.now() + VIDEO_LINK_WAIT_MS
  while (task.status === 'success' && (task.video === null || task.video === undefined) && Date.now() < deadline) {
    await sleep(VIDEO_LINK_POLL_MS, undefined, { signal: ctx.signal })
    task = await getTask(ctx.client, task.id, ctx.signal)
  }
  return await downloadVideo(ctx.client, task.id, file, ctx.out, ctx.signal)
}

export async function download (ctx: Context, id: string, file: string | undefined): Promise<void> {
  const task = await getTask(ctx.client, id, ctx.signal)
  const target = file ?? `${basename(task.id)}.mp4`
  const downloaded = await downloadWhenReady(ctx, task, target)
  ctx.out.result(downloaded, () => `${downloaded.path} (${downloaded.bytes} bytes, sha256 ${downloaded.sha256})`)
}

export async function refresh (ctx: Context, id: string): Promise<void> {
  const { body: task } = await ctx.client.json<Task>('POST', path(id, '/refresh'), { signal: ctx.signal })
  ctx.out.result(task, () => taskLines(ctx.out, task))
}

export async function cancel (ctx: Context, id: string): Promise<void> {
  const { body } = await ctx.client.json<Task>('POST', path(id, '/cancel'), { signal: ctx.signal })
  ctx.out.result(body, () => body && typeof body === 'object' && 'status' in body ? [`cancelled ${body.id ?? id}`, ...taskLines(ctx.out, body)] : `cancelled ${id}`)
}

/** Any JSON as indented "key  value" lines: the quota's shape belongs to the service. */
function flatten (value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object') return [`${prefix}  ${String(value)}`]
  const lines: string[] = []
  for (const [key, v] of Object.entries(value)) {
    const name = prefix === '' ? key : `${prefix}.${key}`
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) lines.push(...flatten(v, name))
    else lines.push(`${name.padEnd(24)}  ${Array.isArray(v) ? JSON.stringify(v) : String(v)}`)
  }
  return lines
}

export async function quota (ctx: Context): Promise<void> {
  const { body } = await ctx.client.json<unknown>('GET', '/v1/quota', { signal: ctx.signal })
  ctx.out.result(body, () => flatten(body))
}

type Delivery = { id: string, task: string, url: string, status: string, state: string, dead_reason: string | null, created_at: string, attempts: { status_code: number | null, error: string | null }[] }

export async function deliveriesList (ctx: Context, opts: { state?: string, task?: string, limit?: number, cursor?: string }): Promise<void> {
  const { body } = await ctx.client.json<Page<Delivery>>('GET', '/v1/deliveries', { query: { state: opts.state, task: opts.task, limit: opts.limit, cursor: opts.cursor }, signal: ctx.signal })
  ctx.out.result(body, () => {
    if (body.items.length === 0) return ['no deliveries']
    const rows = body.items.map(d => {
      const last = d.attempts.at(-1)
      const lastText = last === undefined ? '' : `  last: ${last.status_code ?? '-'} ${last.error ?? ''}`.trimEnd()
      return `${d.id}  ${d.state.padEnd(9)}  ${d.status.padEnd(10)}  task ${d.task}  ${d.url}  ${d.attempts.length} attempt(s)${d.dead_reason ? `  (${d.dead_reason})` : ''}${lastText}`
    })
    if (body.next_cursor !== null) rows.push(`more: --cursor ${body.next_cursor}`)
    return rows
  })
}

// The start of time for "every failed delivery": the bulk route needs a `since`.
const EPOCH = '1970-01-01T00:00:00.000Z'

export async function deliveriesRetry (ctx: Context, id: string | undefined, opts: { allFailed?: boolean, since?: string }): Promise<void> {
  if ((id === undefined) === (opts.allFailed !== true)) throw usageError('give a delivery id, or --all-failed (not both)')
  if (id !== undefined) {
    const { body } = await ctx.client.json<Delivery>('POST', `/v1/deliveries/${encodeURIComponent(id)}/retry`, { signal: ctx.signal })
    ctx.out.result(body, () => `retrying ${body.id} (${body.state})`)
    return
  }
  if (opts.since !== undefined && !Number.isFinite(Date.parse(opts.since))) throw usageError(`--since takes an ISO date-time, got: ${opts.since}`)
  const since = opts.since === undefined ? EPOCH : new Date(opts.since).toISOString()
  const { body } = await ctx.client.json<{ retried: number, skipped: number }>('POST', '/v1/deliveries/retry', { body: { since }, signal: ctx.signal })
  ctx.out.result(body, () => `retried ${body.retried} failed deliveries, skipped ${body.skipped} (superseded)`)
}

/** The token from stdin: hidden when typed at a terminal, else the first line of a pipe (never an argument in shell history). */
async function readSecret (prompt: string, out: Output): Promise<string> {
  const input = process.stdin
  const muted = new Writable({ write (_chunk, _enc, cb) { cb() } })
  if (input.isTTY) out.stderr.write(prompt)
  const rl = createInterface({ input, output: input.isTTY ? muted : undefined, terminal: input.isTTY === true })
  try {
    const line = await new Promise<string>((resolve, reject) => {
      rl.once('line', resolve)
      rl.once('close', () => reject(usageError('no value given on stdin')))
    })
    if (input.isTTY) out.stderr.write('\n')
    return line.trim()
  } finally {
    rl.close()
  }
}

export async function configSet (ctx: Pick<Context, 'out' | 'env'>, key: string, value: string | undefined): Promise<void> {
  const stored = await readStoredConfig(ctx.env)
  if (key === 'url') {
    if (value === undefined) throw usageError('s2v config set url <url>')
    stored.url = normaliseUrl(value)
  } else {
    const token = value ?? await readSecret('Token: ', ctx.out)
    if (token === '') throw usageError('the token is empty')
    stored.token = token
  }
  const file = await writeStoredConfig(ctx.env, stored)
  // The token itself is never echoed.
  const shown = key === 'url' ? stored.url : '(set)'
  ctx.out.result({ key, value: key === 'url' ? stored.url : null, path: file }, () => `${key} ${shown} saved in ${file} (owner-only)`)
}

export async function configUnset (ctx: Pick<Context, 'out' | 'env'>, key: string): Promise<void> {
  const stored = await readStoredConfig(ctx.env)
  delete stored[key as 'url' | 'token']
  const file = await writeStoredConfig(ctx.env, stored)
  ctx.out.result({ key, path: file }, () => `${key} removed from ${file}`)
}

export async function configShow (ctx: Pick<Context, 'out' | 'env' | 'settings'>): Promise<void> {
  const { settings } = ctx
  const mode = await configFileMode(ctx.env)
  const document = {
    url: settings.url,
    url_source: settings.urlSource,
    token: settings.token === undefined ? 'not set' : 'set',
    token_source: settings.tokenSource ?? null,
    path: configPath(ctx.env),
    mode: mode === null ? null : `0${mode.toString(8)}`
  }
  ctx.out.result(document, () => [
    `url    ${document.url}  (from ${document.url_source})`,
    `token  ${document.token}${document.token_source ? `  (from ${document.token_source})` : ''}`,
    `file   ${document.path}${document.mode ? `  (mode ${document.mode})` : '  (none yet)'}`
  ])
}

export { describeTask }
