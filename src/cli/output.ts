// What the user sees: results on stdout (or one JSON document with --json), progress on stderr as a live line on a
// terminal (ora, cli-progress) or plain lines elsewhere, never control characters outside a terminal.
import cliProgress from 'cli-progress'
import ora, { type Ora } from 'ora'
import pc from 'picocolors'
import { formatBytes, formatElapsed } from './duration.js'
import type { Env } from './settings.js'

export type Task = {
  id: string
  task_id: string | null
  status: string
  provider: string
  provider_status: string | null
  error: { code: string, message: string } | null
  created_at: string
  updated_at: string
  queue?: { position: number, eta_s: number | null } | null
  video?: { url: string, expires_at: string } | null
  [key: string]: unknown
}

export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['success', 'failed'])

type Colors = ReturnType<typeof pc.createColors>

export class Output {
  readonly json: boolean
  readonly interactive: boolean
  readonly colors: Colors
  readonly #stdout: NodeJS.WritableStream
  readonly #stderr: NodeJS.WriteStream

  constructor (opts: { json: boolean, env: Env, stdout?: NodeJS.WritableStream, stderr?: NodeJS.WriteStream }) {
    this.json = opts.json
    this.#stdout = opts.stdout ?? process.stdout
    this.#stderr = opts.stderr ?? process.stderr
    // Live lines only for a person at a terminal: a pipe, a file or CI gets plain lines.
    // A terminal of width 0 (a pseudo-terminal nobody sized) cannot hold a redrawn line either.
    this.interactive = this.#stderr.isTTY === true && (this.#stderr.columns ?? 0) > 0 && opts.env.TERM !== 'dumb' && opts.env.CI === undefined
    const colour = opts.env.FORCE_COLOR !== undefined && opts.env.FORCE_COLOR !== '0'
      ? true
      : this.interactive && opts.env.NO_COLOR === undefined
    this.colors = pc.createColors(colour)
  }

  /** The command's result: the JSON document with --json, else the human text. */
  result (document: unknown, human: () => string | string[]): void {
    if (this.json) {
      this.#stdout.write(JSON.stringify(document, null, 2) + '\n')
      return
    }
    const text = human()
    const lines = Array.isArray(text) ? text : [text]
    if (lines.length > 0) this.#stdout.write(lines.join('\n') + '\n')
  }

  /** A progress or notice line, on stderr so stdout stays clean for results. */
  info (line: string): void {
    this.#stderr.write(line + '\n')
  }

  error (message: string, extra: string[] = []): void {
    this.#stderr.write(`${this.colors.red('error')}: ${message}\n`)
    for (const line of extra) this.#stderr.write(`  ${line}\n`)
  }

  liveTask (label: string): TaskProgress {
    return this.interactive ? new LiveTaskLine(this.#stderr, label, this.colors) : new PlainTaskLines(this.#stderr, label)
  }

  download (label: string, total: number | null): DownloadProgress {
    return this.interactive ? new DownloadBar(this.#stderr, label, total) : new PlainDownload(this.#stderr, label, total)
  }

  get stderr (): NodeJS.WriteStream {
    return this.#stderr
  }
}

export function statusColour (colors: Colors, status: string): string {
  if (status === 'success') return colors.green(status)
  if (status === 'failed') return colors.red(status)
  if (status === 'queued') return colors.yellow(status)
  return colors.cyan(status)
}

/** The words of a live line or a plain line: status, queue position, elapsed time, the provider's own word. */
export function describeTask (task: Task, now: number, colors?: Colors): string {
  const parts = [colors ? statusColour(colors, task.status) : task.status]
  if (task.status === 'queued' && task.queue) {
    parts.push(`queue #${task.queue.position}` + (task.queue.eta_s === null || task.queue.eta_s === undefined ? '' : ` (eta ${formatElapsed(task.queue.eta_s * 1000)})`))
  }
  const created = Date.parse(task.created_at)
  if (Number.isFinite(created)) parts.push(formatElapsed(now - created))
  if (task.provider_status) parts.push(`${task.provider}: ${task.provider_status}`)
  if (task.error) parts.push(`error ${task.error.code}: ${task.error.message}`)
  return parts.join(' · ')
}

export interface TaskProgress {
  update (task: Task): void
  /** Ends the display; the final line is kept (a terminal) or printed (plain). */
  stop (final?: string): void
}

// How often the elapsed time on the live line moves: once a second is what a person reads.
const LIVE_TICK_MS = 1000

class LiveTaskLine implements TaskProgress {
  readonly #spinner: Ora
  readonly #label: string
  readonly #colors: Colors
  readonly #timer: NodeJS.Timeout
  #task: Task | null = null

  constructor (stream: NodeJS.WriteStream, label: string, colors: Colors) {
    this.#label = label
    this.#colors = colors
    // discardStdin off: the terminal stays in cooked mode, so Ctrl-C is a plain SIGINT we handle.
    this.#spinner = ora({ stream, text: `${label} · connecting`, discardStdin: false, isEnabled: true }).start()
    this.#timer = setInterval(() => this.#render(), LIVE_TICK_MS)
    this.#timer.unref()
  }

  update (task: Task): void {
    this.#task = task
    this.#render()
  }

  #render (): void {
    if (this.#task !== null) this.#spinner.text = `${this.#label} · ${describeTask(this.#task, Date.now(), this.#colors)}`
  }

  stop (final?: string): void {
    clearInterval(this.#timer)
    const text = final ?? (this.#task ? `${this.#label} · ${describeTask(this.#task, Date.now(), this.#colors)}` : this.#label)
    if (this.#task?.status === 'success') this.#spinner.succeed(text)
    else if (this.#task?.status === 'failed') this.#spinner.fail(text)
    else this.#spinner.stopAndPersist({ symbol: '•', text })
  }
}

class PlainTaskLines implements TaskProgress {
  readonly #stream: NodeJS.WritableStream
  readonly #label: string
  #last = ''

  constructor (stream: NodeJS.WritableStream, label: string) {
    this.#stream = stream
    this.#label = label
  }

  // One line per change of what matters (status, queue position, provider word), never per tick.
  update (task: Task): void {
    const key = [task.status, task.queue?.position ?? '', task.provider_status ?? '', task.error?.code ?? ''].join('|')
    if (key === this.#last) return
    this.#last = key
    this.#stream.write(`${new Date().toISOString()} ${this.#label} ${describeTask(task, Date.now())}\n`)
  }

  stop (final?: string): void {
    if (final !== undefined) this.#stream.write(`${new Date().toISOString()} ${this.#label} ${final}\n`)
  }
}

export interface DownloadProgress {
  advance (bytes: number): void
  stop (ok: boolean): void
}

function rate (bytes: number, startedAt: number): string {
  const seconds = Math.max((performance.now() - startedAt) / 1000, 0.001)
  return `${formatBytes(Math.round(bytes / seconds))}/s`
}

class DownloadBar implements DownloadProgress {
  readonly #bar: cliProgress.SingleBar
  readonly #total: number | null
  readonly #startedAt = performance.now()
  #done = 0

  constructor (stream: NodeJS.WriteStream, label: string, total: number | null) {
    this.#total = total
    this.#bar = new cliProgress.SingleBar({
      stream,
      format: `${label} [{bar}] {percentage}% · {size} · {rate}`,
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      // Redraw at most 10 times a second: enough to look live, cheap on a slow terminal.
      fps: 10
    }, cliProgress.Presets.shades_classic)
    // Without Content-Length the bar cannot know the end: it shows the bytes and the rate, and fills at the end.
    this.#bar.start(total ?? 1, 0, this.#payload())
  }

  #payload (): Record<string, string> {
    return { size: this.#total === null ? formatBytes(this.#done) : `${formatBytes(this.#done)} / ${formatBytes(this.#total)}`, rate: rate(this.#done, this.#startedAt) }
  }

  advance (bytes: number): void {
    this.#done += bytes
    this.#bar.update(this.#total === null ? 0 : Math.min(this.#done, this.#total), this.#payload())
  }

  stop (ok: boolean): void {
    if (ok) this.#bar.update(this.#total ?? 1, this.#payload())
    this.#bar.stop()
  }
}

class PlainDownload implements DownloadProgress {
  readonly #stream: NodeJS.WritableStream
  readonly #label: string
  readonly #startedAt = performance.now()
  #done = 0

  constructor (stream: NodeJS.WritableStream, label: string, total: number | null) {
    this.#stream = stream
    this.#label = label
    stream.write(`${new Date().toISOString()} downloading ${label}${total === null ? '' : ` (${formatBytes(total)})`}\n`)
  }

  advance (bytes: number): void {
    this.#done += bytes
  }

  stop (ok: boolean): void {
    const took = ((performance.now() - this.#startedAt) / 1000).toFixed(1)
    this.#stream.write(`${new Date().toISOString()} ${ok ? 'downloaded' : 'download failed:'} ${this.#label} ${formatBytes(this.#done)} in ${took} s (${rate(this.#done, this.#startedAt)})\n`)
  }
}
