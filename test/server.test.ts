// The process entry: fails fast on bad configuration, and SIGTERM lets in-flight requests finish.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startFakeMiniMax } from './fixtures/fake-minimax.js'
import { freePort, postJson, submitBody, tempDir } from './helper.js'

const SERVER = join(import.meta.dirname, '..', 'dist', 'server.js')
const skip = existsSync(SERVER) ? false : 'run `npm run build` first (npm test does)'
// A start takes ~0.5 s idle, measured 6-19 s at load average 20 (startBuiltServer in test/helper.ts allows 60 s too).
const START_TIMEOUT_MS = 60_000

t.test('a bad variable stops the start with a message naming it', { skip }, async (t) => {
  const result = spawnSync(process.execPath, [SERVER], { env: { ...process.env, PORT: 'eighty', DATABASE_PATH: join(tempDir(t), 'x.db') }, encoding: 'utf8', timeout: START_TIMEOUT_MS })
  t.equal(result.status, 1)
  t.match(result.stderr, /PORT must be integer/)
})

t.test('SIGTERM finishes the in-flight submit, closes the database and exits 0', { skip }, async (t) => {
  const fake = await startFakeMiniMax({ behaviour: { createDelayMs: 700, pushes: 'none' } })
  t.teardown(() => fake.close())
  const port = String(await freePort())
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, PORT: port, HOST: '127.0.0.1', DATABASE_PATH: join(tempDir(t), 's2v.db'), MINIMAX_API_KEY: fake.apiKey, MINIMAX_BASE_URL: fake.url, PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, LOG_LEVEL: 'warn' },
    stdio: 'ignore'
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  for (let ready = false; !ready; await sleep(50)) ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false)

  const inFlight = postJson(`${url}/v1/video_generation`, submitBody())
  await fake.waitFor(() => fake.tasks.size === 1) // MiniMax is now holding the create for 700 ms
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  const answer = await inFlight
  t.equal(answer.status, 200, 'the in-flight submit got its answer')
  t.equal(await exited, 0, 'exit code 0')
  await t.rejects(fetch(`${url}/healthz`), 'no longer listening')
})

t.test('a busy port stops the start with a hint, not a stack trace', { skip }, async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = String((blocker.address() as AddressInfo).port)
  const result = spawnSync(process.execPath, [SERVER], {
    env: { ...process.env, PORT: port, HOST: '127.0.0.1', DATABASE_PATH: join(tempDir(t), 'x.db'), LOG_LEVEL: 'silent' }, encoding: 'utf8', timeout: START_TIMEOUT_MS
  })
  t.equal(result.status, 1)
  t.match(result.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use.*PORT=<port>`))
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace')
})

t.test('SIGTERM to the `npm start` process stops the service (node replaces the shell)', { skip }, async (t) => {
  const port = String(await freePort())
  const npm = spawn('npm', ['start'], {
    cwd: join(import.meta.dirname, '..'),
    env: { ...process.env, PORT: port, HOST: '127.0.0.1', DATABASE_PATH: join(tempDir(t), 's2v.db'), LOG_LEVEL: 'warn' },
    stdio: 'ignore'
  })
  t.teardown(() => { if (npm.exitCode === null) npm.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  for (let ready = false; !ready; await sleep(50)) ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false)
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)))
  npm.kill('SIGTERM')
  t.equal(await exited, 0, 'npm exits 0 once the service has closed')
  await t.rejects(fetch(`${url}/healthz`), 'nothing listens on the port any more')
})
