// The README works as written: its shell examples run in order against the real service (`npm start`) and the fakes,
// and every answer has the shape the README prints (ids and times aside). Rules: test/readme/harness.ts.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConfigSchema } from '../src/config.js'
import { freePort } from './helper.js'
import { parsePrinted, parseReadme, shapeDifference, sseEvents, substitute, type Command } from './readme/harness.js'

const ROOT = join(import.meta.dirname, '..')
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')

// Long-running commands of the README, started in the background, and the port each listens on in the README.
const BACKGROUND: Array<{ pattern: RegExp, name: string, port: number }> = [
  { pattern: /\bnpm run fake-minimax\b/, name: 'fake MiniMax', port: 4010 },
  { pattern: /\bnpm run fake-modellix\b/, name: 'fake Modellix', port: 4011 },
  { pattern: /\bnpm (?:start|run dev)\b/, name: 'service', port: 3000 },
  { pattern: /\bnode [\w.-]+\.mjs\b/, name: 'webhook consumer', port: 8080 }
]
// `npm start` may have to compile first (a cold tsc takes 20 s on a busy 2-core machine).
const READY_TIMEOUT_MS = 120_000
const COMMAND_TIMEOUT_MS = 30_000
// A lookup printed "a moment later" may need the fake's pushes or the reconciler's polls to land first.
const SETTLE_MS = 25_000
const RETRY_PAUSE_MS = 300

t.test('the README\'s shell examples run in order and answer what they print', { timeout: 170_000 }, async (t) => {
  const examples = parseReadme(README)
  const work = mkdtempSync(join(ROOT, '.readme-run-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))

  const ports = new Map<number, number>()
  for (const { port } of BACKGROUND) ports.set(port, await freePort())
  const env: NodeJS.ProcessEnv = { ...process.env }
  // The developer's own settings must not change what the examples do.
  for (const name of Object.keys(ConfigSchema.properties)) delete env[name]
  for (const name of Object.keys(env)) if (name.startsWith('npm_') || name.startsWith('FAKE_')) delete env[name]
  Object.assign(env, {
    PORT: String(ports.get(3000)),
    FAKE_MINIMAX_PORT: String(ports.get(4010)),
    FAKE_MODELLIX_PORT: String(ports.get(4011)),
    DATABASE_PATH: join(work, 's2v.db')
  })
  const withPorts = (text: string) => text.replace(/(?<=[:(])(3000|4010|4011|8080)\b/g, (port) => String(ports.get(Number(port))))
  // In printed answers only addresses are ports (`retry: 3000` is a time).
  const withPortsInAnswer = (text: string) => text.replace(/(?<=127\.0\.0\.1:)(3000|4010|4011|8080)\b/g, (port) => String(ports.get(Number(port))))

  const running = new Map<string, { child: ChildProcess, log: string }>()
  t.teardown(async () => { for (const name of [...running.keys()]) await stop(running, name) })

  const ids = new Map<string, string>()
  let ran = 0
  for (const example of examples) {
    const where = `README.md:${example.line} (${example.section})`
    if (example.skip) {
      t.comment(`not run: ${where}: ${example.skip}`)
      continue
    }
    if (example.kind === 'file') {
      writeFileSync(join(work, example.name), withPorts(example.text))
      continue
    }
    for (const command of example.commands) {
      const text = withPorts(substitute(command.text, ids))
      const background = BACKGROUND.find(({ pattern }) => pattern.test(text))
      if (background) {
        await stop(running, background.name)
        const log = join(work, `${background.name.replace(/\W+/g, '-')}-${command.line}.log`)
        const fd = openSync(log, 'w')
        const child = spawn('bash', ['-c', text], { cwd: work, env, stdio: ['ignore', fd, fd], detached: true })
        closeSync(fd)
        running.set(background.name, { child, log })
        const port = ports.get(background.port) as number
        const ready = await listening(port, child, READY_TIMEOUT_MS)
        t.ok(ready, `README.md:${command.line}: ${background.name} listens (${firstLine(command.text)})`)
        if (!ready) return t.comment(readFileSync(log, 'utf8'))
        ran++
        continue
      }
      const difference = await runUntilItFits({ ...command, expected: withPortsInAnswer(command.expected) }, text, work, env, ids)
      t.equal(difference, null, `README.md:${command.line}: ${firstLine(command.text)}`)
      if (difference !== null) {
        for (const [name, { log }] of running) t.comment(`--- ${name} log (tail) ---\n${readFileSync(log, 'utf8').split('\n').slice(-15).join('\n')}`)
        return
      }
      ran++
    }
  }
  t.ok(ran >= 15, `${ran} README commands ran`)
  t.ok(ids.size >= 3, `the README's example ids stood for ${ids.size} real ones`)
})

/** Runs a command and compares its answer with the printed one; a read (GET) is repeated until it fits or time is up. */
async function runUntilItFits (command: Command, text: string, cwd: string, env: NodeJS.ProcessEnv, ids: Map<string, string>): Promise<string | null> {
  const isRead = /^curl\b/.test(text) && !/\s-X\s*(POST|PUT|PATCH|DELETE)\b|\s(-d|--data\S*)\s/.test(text)
  const deadline = Date.now() + SETTLE_MS
  for (;;) {
    const result = await run(text, cwd, env)
    if (result.code !== 0) return `exit code ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`
    const trial = new Map(ids)
    const difference = compare(command.expected, result.stdout, trial)
    if (difference === null) {
      for (const [k, v] of trial) ids.set(k, v)
      return null
    }
    if (!isRead || Date.now() > deadline) return `${difference}\n  answer: ${result.stdout.slice(0, 2000)}`
    await sleep(RETRY_PAUSE_MS)
  }
}

function compare (expected: string, stdout: string, ids: Map<string, string>): string | null {
  if (expected === '') return null
  if (/^(retry|id|event|data):/.test(expected)) {
    const printed = sseEvents(expected)
    const actual = sseEvents(stdout)
    if (printed.length !== actual.length) return `printed ${printed.length} events, got ${actual.length}`
    for (const [i, event] of printed.entries()) {
      const got = actual[i] as Record<string, string>
      if (Object.keys(event).join() !== Object.keys(got).join()) return `event ${i}: fields ${Object.keys(got).join()} instead of ${Object.keys(event).join()}`
      for (const [field, value] of Object.entries(event)) {
        const difference = field === 'data' ? shapeDifference(parsePrinted(value), parseJson(got.data ?? ''), ids, `event ${i} data`) : value === got[field] ? null : `event ${i} ${field}: ${got[field]} instead of ${value}`
        if (difference) return difference
      }
    }
    return null
  }
  let printed: unknown
  try {
    printed = parsePrinted(expected)
  } catch (err) {
    return `the README prints something that is not JSON (elide with … only): ${(err as Error).message}`
  }
  return shapeDifference(printed, parseJson(stdout), ids)
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return `<not JSON: ${text.slice(0, 200)}>`
  }
}

async function run (text: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn('bash', ['-c', text], { cwd, env, detached: true })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => { stdout += chunk })
  child.stderr.on('data', (chunk) => { stderr += chunk })
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), COMMAND_TIMEOUT_MS)
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

async function listening (port: number, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && child.exitCode === null) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (open) return true
    await sleep(100)
  }
  return false
}

// SIGTERM to the command itself (npm passes it on to the service, which closes gracefully), then the group if need be.
async function stop (running: Map<string, { child: ChildProcess }>, name: string): Promise<void> {
  const entry = running.get(name)
  if (!entry) return
  running.delete(name)
  const { child } = entry
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
  killGroup(child, 'SIGKILL') // anything the command left behind in its group
}

function killGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal)
  } catch {
    // the group is already gone
  }
}

const firstLine = (text: string) => text.split('\n')[0]!.slice(0, 100)
