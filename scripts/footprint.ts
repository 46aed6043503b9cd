// `npx tsx scripts/footprint.ts [database] [runs]`: how soon `node dist/server.js` is ready, and its memory once idle.
// Ready = spawn → first 200 from /readyz and a challenge answered; then CPU used so far, and VmRSS after IDLE_MS.
// Build first (npm run build). For a 1,000,000-task database: bench/fill.ts fillTasks(path, 1_000_000), ~40 s.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('../dist/server.js', import.meta.url))
const IDLE_MS = 3000 // what "idle" means in issue 13: 3 s after ready
const POLL_MS = 2 // short, so the figure is the server's, not the poller's
// Linux reports CPU times in clock ticks of 1/100 s (USER_HZ).
const MS_PER_TICK = 10

const scratch = mkdtempSync(join(tmpdir(), 's2v-footprint-'))
const database = process.argv[2] ?? join(scratch, 'empty.db')
const runs = Number(process.argv[3] ?? 5)

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

function status (pid: number, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024
}

function cpuMs (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK
}

async function answers (url: string): Promise<boolean> {
  try {
    if ((await fetch(`${url}/readyz`)).status !== 200) return false
    const res = await fetch(`${url}/get_callback/x.y`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"challenge":"a"}' })
    return res.status === 200 && (await res.json() as { challenge?: string }).challenge === 'a'
  } catch {
    return false
  }
}

const results: Array<{ readyMs: number, cpuMs: number, idleRssMb: number }> = []
for (let run = 0; run < runs; run++) {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const started = performance.now()
  const child = spawn(process.execPath, [SERVER], {
    cwd: scratch,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port), PUBLIC_BASE_URL: url, DATABASE_PATH: database, LOG_LEVEL: 'info', API_TOKENS: 'bench:bench-token' },
    stdio: 'ignore'
  })
  while (!await answers(url)) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode})`)
    await sleep(POLL_MS)
  }
  const readyMs = Math.round(performance.now() - started)
  const used = cpuMs(child.pid!)
  await sleep(IDLE_MS)
  results.push({ readyMs, cpuMs: used, idleRssMb: Math.round(status(child.pid!, 'VmRSS')) })
  child.kill('SIGTERM')
  await new Promise((resolve) => child.once('exit', resolve))
}
rmSync(scratch, { recursive: true, force: true })

const median = (key: keyof typeof results[number]) => results.map((result) => result[key]).sort((a, b) => a - b)[Math.floor(results.length / 2)]
console.log(JSON.stringify(results))
console.log(`${database}: ready ${median('readyMs')} ms (CPU ${median('cpuMs')} ms), idle RSS ${median('idleRssMb')} MB (medians of ${runs})`)
