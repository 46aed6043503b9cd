// The image checks' plumbing: named steps printed with their notes and problems, child processes in their own
// groups, temp folders, all ended and removed by cleanUp().
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const OUTPUT_TAIL_CHARS = 6_000 // the end of a failing command's output: enough to see why, without flooding the CI log

export interface StepContext { note: (text: string) => void, check: (ok: boolean, problem: string) => void }
export class Abort extends Error {} // a step threw: the steps after it depend on it

export const results: Array<{ name: string, ok: boolean }> = []

export function duration (ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

export function indent (text: string): string {
  return text.split('\n').map((line) => `    ${line}`).join('\n')
}

// Runs one step and prints it with its duration, notes and problems; a throw also stops the check.
export async function step<T> (name: string, fn: (ctx: StepContext) => Promise<T> | T): Promise<T> {
  const notes: string[] = []
  const problems: string[] = []
  const started = performance.now()
  let result: T | undefined
  let failed = false
  try {
    result = await fn({ note: (text) => notes.push(text), check: (ok, problem) => { if (!ok) problems.push(problem) } })
  } catch (err) {
    failed = true
    problems.push(err instanceof Error ? err.message : String(err))
  }
  results.push({ name, ok: problems.length === 0 })
  console.log(`${problems.length === 0 ? '✓' : '✗'} ${name} (${duration(performance.now() - started)})`)
  for (const text of notes) console.log(indent(`note: ${text}`))
  for (const text of problems) console.log(indent(`✗ ${text}`))
  if (failed) throw new Abort(name)
  return result as T
}

const children = new Set<ChildProcess>()
const folders: string[] = []

export interface Exit { code: number | null, signal: string | null }
export interface Finished extends Exit { output: string, timedOut: boolean }

export function tempFolder (role: string): string {
  const folder = mkdtempSync(join(tmpdir(), `s2v-image-${role}-`))
  folders.push(folder)
  return folder
}

// This machine's PATH without the node_modules/.bin folders `npm run` puts first: the image has none of the repo's tools.
export function hostPath (): string {
  return (process.env.PATH ?? '').split(delimiter).filter((dir) => !/node_modules[\\/]\.bin$/.test(dir)).join(delimiter)
}

// Starts a command in its own process group, so a timeout or the clean-up ends all it started (npm → node-gyp → g++).
export function start (argv: string[], cwd: string, env: NodeJS.ProcessEnv): { child: ChildProcess, output: () => string } {
  const [command = '', ...args] = argv
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let output = ''
  const keep = (text: string): void => { output = (output + text).slice(-OUTPUT_TAIL_CHARS) }
  child.stdout?.on('data', (chunk: Buffer) => keep(chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => keep(chunk.toString()))
  child.once('error', (err) => keep(`\n${err.message}`))
  child.once('close', () => children.delete(child))
  return { child, output: () => output }
}

export function killGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal)
  } catch {} // already gone
}

// The child's exit once its output is closed, or undefined when timeoutMs passes first.
export async function exitWithin (child: ChildProcess, timeoutMs: number): Promise<Exit | undefined> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode }
  const exit = new Promise<Exit>((resolve) => {
    child.once('close', (code: number | null, signal: string | null) => resolve({ code, signal }))
    child.once('error', () => resolve({ code: null, signal: null })) // could not start
  })
  return await Promise.race([exit, sleep(timeoutMs, undefined, { ref: false })])
}

export async function runToEnd (argv: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Finished> {
  const { child, output } = start(argv, cwd, env)
  const exit = await exitWithin(child, timeoutMs)
  if (!exit) killGroup(child, 'SIGKILL')
  return { code: exit?.code ?? null, signal: exit?.signal ?? null, output: output(), timedOut: !exit }
}

export function describe (result: Finished, timeoutMs: number): string {
  if (result.timedOut) return `still running after ${duration(timeoutMs)}, killed`
  return result.signal ? `killed by ${result.signal}` : `exit code ${result.code}`
}

// Ends every child still running and removes the temp folders; safe to call twice.
export function cleanUp (): void {
  for (const child of children) killGroup(child, 'SIGKILL')
  children.clear()
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true })
}

export async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return address.port
}
