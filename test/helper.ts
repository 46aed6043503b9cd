// Shared test set-up: an app on a fresh database (inject or real socket), a fake MiniMax, captured logs.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { randomUUID } from 'node:crypto'
import pino from 'pino'
import { buildApp, type App } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { newCallbackToken } from '../src/lib/callback-token.js'
import { loggerOptions } from '../src/logger.js'
import type { VideoProvider } from '../src/providers/provider.js'
import { CallBudget } from '../src/services/call-budget.js'
import { Reconciler } from '../src/services/reconciler.js'
import type { TaskStore } from '../src/services/task-store.js'
import type { Db } from '../src/db/database.js'
import { sqliteOf } from '../src/plugins/database.js'
import { startFakeMiniMax, type FakeBehaviour, type FakeMiniMax } from './fixtures/fake-minimax.js'
import { startFakeModellix, type FakeModellix } from './fixtures/fake-modellix.js'

type Test = { teardown: (fn: () => unknown) => void }

export function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 's2v-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export function testConfig (t: Test, env: Record<string, string> = {}): Config {
  // Creates are paced far above any test's pace unless a test sets the queue's rates itself (test/services/submit-queue.test.ts).
  return loadConfig({ DATABASE_PATH: join(tempDir(t), 's2v.db'), LOG_LEVEL: 'silent', MINIMAX_SUBMIT_RPM: '100000', MODELLIX_SUBMIT_RPM: '100000', ...env })
}

/** Every log line the app writes, parsed, plus the raw text (to search for leaked secrets). */
export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = []
  raw = ''
  readonly logger = pino({ ...loggerOptions('debug') }, new Writable({
    write: (chunk, _encoding, done) => {
      this.raw += chunk.toString()
      for (const line of chunk.toString().split('\n').filter(Boolean)) this.lines.push(JSON.parse(line))
      done()
    }
  }))
}

/** An app on a fresh database, for app.inject; closed when the test ends. */
export async function build (t: Test, env: Record<string, string> = {}, logs?: LogCapture): Promise<App> {
  const app = await buildApp(testConfig(t, env), logs ? { logger: logs.logger } : {})
  t.teardown(() => app.close())
  await app.ready()
  return app
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

export type Stack = { app: App, url: string, fake: FakeMiniMax, modellix: FakeModellix, config: Config }

/** The real service on a loopback socket, wired to a fresh fake MiniMax; both stopped when the test ends. */
export async function startStack (t: Test, options: { env?: Record<string, string>, behaviour?: Partial<FakeBehaviour>, logs?: LogCapture } = {}): Promise<Stack> {
  const fake = await startFakeMiniMax({ behaviour: { pushDelayMs: 10, ...options.behaviour } })
  t.teardown(() => fake.close())
  const modellix = await startFakeModellix({ behaviour: { stepMs: 20 } })
  t.teardown(() => modellix.close())
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const config = testConfig(t, {
    PORT: String(port),
    PUBLIC_BASE_URL: url,
    MINIMAX_BASE_URL: fake.url,
    MINIMAX_API_KEY: fake.apiKey,
    MODELLIX_BASE_URL: modellix.url,
    MODELLIX_API_KEY: modellix.apiKey,
    // The fakes serve their videos over http on loopback, which the download guard refuses by default.
    VIDEO_ALLOW_PRIVATE: 'true',
    ...options.env
  })
  const app = await buildApp(config, options.logs ? { logger: options.logs.logger } : {})
  t.teardown(() => app.close())
  await app.listen({ port, host: '127.0.0.1' })
  return { app, url, fake, modellix, config }
}

/** A valid submit body with a small image URL. */
export function submitBody (extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model: 'S2V-01',
    prompt: 'a person waves at the camera',
    subject_reference: [{ type: 'character', image: ['https://example.com/face.jpg'] }],
    ...extra
  }
}

export async function postJson (url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: any, headers: Headers }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers }
}

export async function getJson (url: string, headers: Record<string, string> = {}): Promise<{ status: number, body: any }> {
  const response = await fetch(url, { headers })
  return { status: response.status, body: await response.json() }
}

/** A task row as a submit would leave it, with its callback token (for callback tests without MiniMax). */
export async function seedTask (store: TaskStore, extra: { task_id?: string, metadata?: Record<string, unknown>, caller?: string, notify_url?: string } = {}): Promise<{ id: string, token: string, seq: number }> {
  const id = randomUUID()
  const { token, hash } = newCallbackToken(id)
  const row = await store.create({
    id,
    provider: 'minimax',
    model: 'S2V-01',
    status: 'submitting',
    prompt: 'seeded',
    prompt_optimizer: null,
    image_ref: 'https://example.com/face.jpg',
    metadata: extra.metadata ? JSON.stringify(extra.metadata) : null,
    callback_token_hash: hash,
    caller: extra.caller ?? 'anonymous',
    created_at: new Date().toISOString(),
    notify_url: extra.notify_url ?? null,
    next_poll_at: null
  })
  if (extra.task_id) await store.applyUpdate(row.seq, extra.task_id, { status: 'processing', providerStatus: null }, 'submit')
  return { id, token, seq: row.seq }
}

let taskCounter = 0
/** A fresh 18-digit MiniMax-style task id (above 2^53). */
export function taskId (): string {
  taskCounter += 1
  return `3${String(process.pid).padStart(7, '0')}${String(taskCounter).padStart(10, '0')}`
}

/** The error a promise rejects with, when it is of the expected class (anything else fails the test). */
export async function rejectionOf<E extends Error> (promise: Promise<unknown>, type: new (...args: any[]) => E): Promise<E> {
  try {
    await promise
  } catch (err) {
    if (err instanceof type) return err
    throw err
  }
  throw new Error(`expected a ${type.name}`)
}

/** The MiniMax status queries the fake has answered so far. */
export const queries = (stack: Stack) => stack.fake.requests.filter((r) => r.path === '/v1/query/video_generation').length

/** Looks the task up until `done` says so (or throws after timeoutMs). */
export async function waitForTask (stack: Stack, id: string, done: (task: any) => boolean, timeoutMs = 6000): Promise<any> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { body } = await getJson(`${stack.url}/v1/tasks/${id}`)
    if (done(body)) return body
    if (Date.now() > deadline) throw new Error(`task ${id} not done in ${timeoutMs} ms: ${JSON.stringify(body)}`)
    await sleep(20)
  }
}

/**
 * The built server (dist/server.js) in a child process, ready; killed with SIGKILL when the test ends if still alive.
 * Logs at warn unless env says otherwise; the end of its stderr is in the error when it exits or never gets ready.
 */
export async function startBuiltServer (t: Test, server: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [server], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  // a start takes ~0.5 s on an idle machine, measured 6-19 s at load average 20
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${env.PORT}/readyz`)).ok) return child
    } catch {}
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}): ${stderr}`)
    if (Date.now() > deadline) throw new Error(`the server did not become ready: ${stderr}`)
    await sleep(25)
  }
}

/**
 * A reconciler on its own, over `store` and one MiniMax-named provider the test controls, with the same poll policy
 * for every provider; its next-poll policy is set on the store as plugins/task-effects.ts sets it in the app.
 */
export function standaloneReconciler (store: TaskStore, provider: VideoProvider, options: { afterNewsMs: number, backoffMs: number, backoffMaxMs: number, providerRequestTimeoutMs: number, latePollMs?: number }): Reconciler {
  const { providerRequestTimeoutMs, latePollMs = 3_600_000, ...timing } = options
  const reconciler = new Reconciler({
    store,
    providers: new Map([['minimax', provider]]),
    policies: { minimax: { ...timing, budget: new CallBudget(1000) }, modellix: { ...timing, budget: new CallBudget(1000) } },
    tickMs: 1000,
    submittingTimeoutMs: 600_000,
    deadlineMs: 7_200_000,
    lateResultWindowMs: 86_400_000,
    latePollMs,
    archive: false,
    providerRequestTimeoutMs,
    log: { info () {}, warn () {}, error () {} }
  })
  store.setPollScheduler((task, now) => reconciler.nextPollAfterNews(task, now))
  return reconciler
}

/** The SQLite handle of an app on the default engine, for tests that look at or change rows directly. */
export const sqliteDb = (app: App): Db => sqliteOf(app.engine, 'a test reading SQLite directly')
