// `npm run demo`: the service and a fake MiniMax together, so the whole flow (submit, challenge, pushes, video) runs with no account.
// One command, one process group: Ctrl-C reaches both, and this process stops the fake once the service has closed.
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { startFakeMiniMax } from '../test/fixtures/fake-minimax.js'

const env = process.env
const port = Number(env.PORT || 3000)
const fakePort = Number(env.FAKE_MINIMAX_PORT || 4010)
// Slow enough to watch the live line move (queued/processing), fast enough not to bore: the real one takes minutes.
const pushDelayMs = Number(env.DEMO_PUSH_DELAY_MS || 1500)
const serviceUrl = `http://127.0.0.1:${port}`
// How long the service may take to answer /readyz (it compiles TypeScript through tsx on the way).
const READY_TIMEOUT_MS = 60_000
const READY_POLL_MS = 200
// If a Ctrl-C only reached this process (not the whole group), the service is told after this long.
const FORWARD_SIGNAL_AFTER_MS = 2000

const fake = await startFakeMiniMax({
  port: fakePort,
  behaviour: { pushDelayMs },
  log: line => console.log(`fake-minimax | ${line.length > 200 ? line.slice(0, 200) + '…' : line}`)
})

// Resolved from this file, so the demo runs from any folder (its data goes to the folder it runs in).
const service = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../src/server.ts', import.meta.url))], {
  stdio: 'inherit',
  env: {
    // Demo data stays apart from `npm start`'s; anything else you set (LOG_LEVEL, ...) is kept.
    DATABASE_PATH: './data/demo.db',
    VIDEO_DIR: './data/demo-videos',
    ...env,
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_BASE_URL: serviceUrl,
    MINIMAX_API_KEY: fake.apiKey,
    MINIMAX_BASE_URL: fake.url,
    // Open, so `npx s2v ...` works without a token (the service logs a warning about it).
    API_TOKENS: ''
  }
})

let stopping = false
service.once('exit', (code, signal) => {
  fake.close().finally(() => {
    if (!stopping) console.error(`demo: the service stopped unexpectedly (${signal ?? `exit code ${code}`})`)
    process.exit(stopping ? 0 : code ?? 1)
  })
})

function stop (signal: NodeJS.Signals): void {
  if (stopping) return
  stopping = true
  console.log(`demo: ${signal}, stopping the service and the fake MiniMax`)
  if (signal === 'SIGTERM') {
    service.kill('SIGTERM')
    return
  }
  // A terminal's Ctrl-C reached the service too (same process group): a second signal would make it skip its graceful close.
  setTimeout(() => { if (service.exitCode === null && service.signalCode === null) service.kill('SIGTERM') }, FORWARD_SIGNAL_AFTER_MS).unref()
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

async function ready (): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    if (Date.now() >= deadline || stopping || service.exitCode !== null) return false
    try {
      if ((await fetch(`${serviceUrl}/readyz`)).ok) return true
    } catch {}
    await sleep(READY_POLL_MS)
  }
}

if (await ready()) {
  const dashboard = await fetch(`${serviceUrl}/ui/`).then(res => res.ok, () => false)
  const url = port === 3000 ? '' : ` --url ${serviceUrl}`
  console.log([
    '',
    `demo ready: the service at ${serviceUrl} talks to a fake MiniMax at ${fake.url} (no account, no key needed).`,
    'next, in another terminal:',
    `  npx s2v submit${url} --image test/fixtures/subject.png --prompt "A person waves at the camera" --wait --out demo.mp4`,
    ...(dashboard ? [`dashboard: ${serviceUrl}/ui/`] : []),
    `API docs: ${serviceUrl}/docs`,
    'Ctrl-C stops both.',
    ''
  ].join('\n'))
} else if (!stopping) {
  console.error(`demo: the service did not become ready at ${serviceUrl} within ${READY_TIMEOUT_MS / 1000} s`)
  service.kill('SIGTERM')
}
