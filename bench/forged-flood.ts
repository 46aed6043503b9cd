// `npx tsx bench/forged-flood.ts [seconds]`: a flood of forged pushes over loopback next to MiniMax's genuine ones.
// Prints how many forgeries were answered (and how), what the genuine pushes got, what was written and logged.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import autocannon from 'autocannon'
import pino from 'pino'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { loggerOptions } from '../src/logger.js'
import { seedTask } from '../test/helper.js'

const seconds = Number(process.argv[2] ?? 10)
// MiniMax pushes a task a handful of times; one genuine push a second is already far more than it sends.
const GENUINE_EVERY_MS = 1000
const dir = mkdtempSync(join(tmpdir(), 's2v-flood-'))
process.once('exit', () => rmSync(dir, { recursive: true, force: true }))

let refusalLines = 0
const logger = pino(loggerOptions('info'), new Writable({
  write (chunk, _encoding, done) {
    refusalLines += chunk.toString().split('\n').filter((line: string) => line.includes('"refused a status push"')).length
    done()
  }
}))
const config = loadConfig({ DATABASE_PATH: join(dir, 'flood.db'), PORT: '0', HOST: '127.0.0.1' })
const app = await buildApp(config, { logger })
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as { port: number }
const base = `http://127.0.0.1:${port}`
const taskId = '399760801914032555'
const { id, token, seq } = await seedTask(app.taskStore, { task_id: taskId })
const eventsBefore = await app.taskStore.queries.countEvents(seq)

const forged = JSON.stringify({ task_id: taskId, status: 'failed' })
const forgeries = ['/get_callback', `/get_callback/${id}.${'A'.repeat(43)}`, `/get_callback/${token.slice(0, -3)}xyz`, '/get_callback/not-a-token']
const genuine: number[] = []
const timer = setInterval(() => {
  fetch(`${base}/get_callback/${token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ task_id: taskId, status: 'processing' }) })
    .then((res) => genuine.push(res.status), () => genuine.push(0))
}, GENUINE_EVERY_MS)

const result = await autocannon({
  url: base,
  connections: 10,
  duration: seconds,
  requests: forgeries.map((path) => ({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body: forged }))
})
clearInterval(timer)
await new Promise((resolve) => setTimeout(resolve, 200))

const lookup = await fetch(`${base}/v1/tasks/${id}`)
const lookupBytes = (await lookup.arrayBuffer()).byteLength
const statuses = Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => `${count} × ${code}`).join(', ')
console.log(`forged pushes: ${result.requests.total} in ${seconds} s (${Math.round(result.requests.average)}/s; ${statuses}; ${result.non2xx} non-2xx, ${result.errors} errors)`)
console.log(`genuine pushes meanwhile: ${genuine.length}, answered ${[...new Set(genuine)].join('/')} (${genuine.filter((status) => status === 200).length} × 200)`)
console.log(`events written to the task: ${await app.taskStore.queries.countEvents(seq) - eventsBefore} (the genuine pushes only); status ${(await app.taskStore.queries.byId(id))!.status}`)
console.log(`"refused a status push" log lines: ${refusalLines} for ${result.requests.total} refusals; lookup afterwards: ${lookupBytes} bytes`)
await app.close()
