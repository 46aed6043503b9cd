// Child-process plumbing for the CLI's end-to-end tests: the fake MiniMax and the real service each in a process, and `s2v` runs.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { freePort, tempDir } from '../helper.js'

type Test = { teardown: (fn: () => unknown) => void }

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const LAUNCHER = join(ROOT, 'bin', 's2v.js')
export const SUBJECT_PNG = join(ROOT, 'test', 'fixtures', 'subject.png')
export const TOKEN = 'cli-test-token'
// A child gets this long to start (tsx compiles on the way, and the machine is shared).
const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 15_000
// Absolute, since the service runs in a temporary folder (away from any .env of the checkout).
const TSX = import.meta.resolve('tsx')

export type ChildStack = { url: string, fakeUrl: string, dir: string, setBehaviour: (b: Record<string, unknown>) => Promise<void> }

/** Ends a child with SIGTERM, then SIGKILL if it does not go. */
export async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
  await exited
  clearTimeout(timer)
}

export async function waitForOutput (child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  let seen = ''
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no ${pattern} within ${START_TIMEOUT_MS} ms; output: ${seen}`)), START_TIMEOUT_MS)
    const onData = (chunk: Buffer) => {
      seen += chunk.toString()
      if (pattern.test(seen)) {
        clearTimeout(timer)
        resolve(seen)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', code => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${code}) before ${pattern}; output: ${seen}`))
    })
  })
}

export async function waitReady (url: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} not ready within ${START_TIMEOUT_MS} ms`)
    await sleep(100)
  }
}

/** The fake MiniMax (npm run fake-minimax) and the service (src/server.ts), each a child process, on free ports. */
export async function startChildStack (t: Test, env: Record<string, string> = {}): Promise<ChildStack> {
  const dir = tempDir(t)
  const [fakePort, port] = [await freePort(), await freePort()]
  const fakeUrl = `http://127.0.0.1:${fakePort}`
  const url = `http://127.0.0.1:${port}`
  const fake = spawn(process.execPath, ['--import', TSX, join(ROOT, 'test', 'fixtures', 'fake-minimax-cli.ts')], {
    cwd: ROOT, env: { PATH: process.env.PATH, FAKE_MINIMAX_PORT: String(fakePort) }, stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => stopChild(fake))
  await waitForOutput(fake, /listening/, 'fake MiniMax')
  const service = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src', 'server.ts')], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_PATH: join(dir, 's2v.db'),
      PUBLIC_BASE_URL: url,
      MINIMAX_API_KEY: 'test-key',
      MINIMAX_BASE_URL: fakeUrl,
      API_TOKENS: TOKEN,
      LOG_LEVEL: 'warn',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let serviceOutput = ''
  service.stdout.on('data', (c: Buffer) => { serviceOutput += c.toString() })
  service.stderr.on('data', (c: Buffer) => { serviceOutput += c.toString() })
  t.teardown(() => stopChild(service))
  await Promise.race([waitReady(url), once(service, 'exit').then(() => { throw new Error(`the service exited: ${serviceOutput}`) })])
  const setBehaviour = async (b: Record<string, unknown>) => {
    const res = await fetch(`${fakeUrl}/_fake/behaviour`, { method: 'POST', body: JSON.stringify(b) })
    if (!res.ok) throw new Error(`fake behaviour ${JSON.stringify(b)}: ${res.status} ${await res.text()}`)
  }
  return { url, fakeUrl, dir, setBehaviour }
}

export type CliRun = { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

export type CliOptions = { env?: Record<string, string | undefined>, cwd?: string, input?: string, onStderr?: (text: string, child: ChildProcess) => void }

/** Runs `node bin/s2v.js ...args` with pipes for stdin, stdout and stderr (so: not a terminal). */
export async function runCli (args: string[], opts: CliOptions = {}): Promise<CliRun> {
  const child = spawn(process.execPath, [LAUNCHER, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { PATH: process.env.PATH, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString()
    opts.onStderr?.(stderr, child)
  })
  child.stdin.end(opts.input ?? '')
  const [code, signal] = await once(child, 'exit') as [number | null, NodeJS.Signals | null]
  // 'exit' can come before the last output is read.
  await Promise.all([child.stdout.closed ? null : once(child.stdout, 'close'), child.stderr.closed ? null : once(child.stderr, 'close')])
  return { code, signal, stdout, stderr }
}
