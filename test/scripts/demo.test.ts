// `npm run demo`: the service and the fake MiniMax in one process group, a printed next step that works, one Ctrl-C for both;
// and the service's logs: pretty on a terminal, JSON lines in a pipe.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, tempDir } from '../helper.js'
import { EXIT } from '../../src/cli/exit-codes.js'
import { ROOT, runCli, waitForOutput } from '../cli/processes.js'

const TSX = import.meta.resolve('tsx')
// The demo gets this long to stop after Ctrl-C (the service's graceful close included).
const STOP_MS = 20_000

async function exitOf (child: ChildProcess, ms: number): Promise<[number | null, NodeJS.Signals | null] | 'still running'> {
  if (child.exitCode !== null || child.signalCode !== null) return [child.exitCode, child.signalCode]
  const timer = new Promise<'still running'>(resolve => setTimeout(() => resolve('still running'), ms).unref())
  return await Promise.race([once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>, timer])
}

t.test('npm run demo: the whole flow with no account, then one Ctrl-C stops both', async t => {
  const dir = tempDir(t)
  const [port, fakePort] = [await freePort(), await freePort()]
  // detached: its own process group, which the test signals as a terminal's Ctrl-C would.
  const demo = spawn(process.execPath, ['--import', TSX, join(ROOT, 'scripts', 'demo.ts')], {
    cwd: dir,
    detached: true,
    env: { PATH: process.env.PATH, PORT: String(port), FAKE_MINIMAX_PORT: String(fakePort), DEMO_PUSH_DELAY_MS: '200', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (demo.exitCode === null) process.kill(-demo.pid!, 'SIGKILL') })
  let output = ''
  demo.stdout.on('data', (c: Buffer) => { output += c.toString() })
  await waitForOutput(demo, /Ctrl-C stops both/, 'npm run demo')

  const url = `http://127.0.0.1:${port}`
  t.match(output, `the service at ${url} talks to a fake MiniMax at http://127.0.0.1:${fakePort}`)
  const next = /npx s2v (submit .*)$/m.exec(output)?.[1] ?? ''
  t.match(next, `--url ${url} --image test/fixtures/subject.png`, 'the next step names the port and the shipped image')
  t.match(next, /--wait --out demo\.mp4$/)
  t.match(output, `API docs: ${url}/docs`)

  // The printed next step, run as printed (from the checkout, where the image is).
  const args = next.split(' ').flatMap(arg => arg === 'demo.mp4' ? [join(dir, 'demo.mp4')] : [arg]).map(a => a.replace(/^"|"$/g, ''))
  const prompt = args.indexOf('--prompt')
  args.splice(prompt, 2 + args.slice(prompt + 1).findIndex(a => a.endsWith('camera')), '--prompt', 'A person waves at the camera')
  const run = await runCli(args, { env: { HOME: dir, XDG_CONFIG_HOME: dir } })
  t.equal(run.code, EXIT.ok, run.stderr)
  const video = readFileSync(join(dir, 'demo.mp4'))
  t.equal(video.subarray(4, 8).toString('latin1'), 'ftyp', 'the MP4 came back')
  t.match(output, /fake-minimax \| challenge .* -> ok/, 'the fake sent the challenge and the service answered it')
  t.match(output, /fake-minimax \| push .*"status":"success".* -> 200/, 'and pushed the result')

  // Not on a terminal: the service logs JSON lines (the open-API_TOKENS warning at least).
  const serviceLines = output.split('\n').filter(line => line.startsWith('{'))
  t.ok(serviceLines.length > 0 && serviceLines.every(line => typeof JSON.parse(line).level === 'number'), 'JSON logs in a pipe')

  process.kill(-demo.pid!, 'SIGINT')
  t.same(await exitOf(demo, STOP_MS), [0, null], 'the demo exits 0 after one Ctrl-C')
  t.match(output, /SIGINT, stopping the service and the fake MiniMax/)
  await t.rejects(fetch(`${url}/healthz`), 'the service is gone')
  await t.rejects(fetch(`http://127.0.0.1:${fakePort}/_fake/state`), 'the fake is gone')
})

t.test('the service logs pretty lines on a terminal (pino-pretty)', { skip: process.platform !== 'linux' && 'needs util-linux script' }, async t => {
  const dir = tempDir(t)
  const port = await freePort()
  const command = `stty cols 120 rows 40; exec ${process.execPath} --import ${TSX} ${join(ROOT, 'src', 'server.ts')}`
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: dir,
    detached: true,
    env: { PATH: process.env.PATH, TERM: 'xterm', PORT: String(port), HOST: '127.0.0.1', DATABASE_PATH: join(dir, 's2v.db') },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL') })
  const text = await waitForOutput(child, /Server listening at/, 'the service under a pseudo-terminal')
  // eslint-disable-next-line no-control-regex -- pino-pretty's colours are escape sequences
  const shown = text.replace(/\x1b\[[0-9;]*m/g, '')
  t.match(shown, /\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(\d+\): Server listening at http:\/\/127\.0\.0\.1:\d+/, 'pretty, not JSON')
  t.notMatch(shown, /^\{"level"/m)
  process.kill(-child.pid!, 'SIGTERM')
  t.not(await exitOf(child, STOP_MS), 'still running')
})
