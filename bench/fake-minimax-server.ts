// Bench child process: the fake MiniMax answering creates at once and pushing nothing, on its own CPU time.
import { startFakeMiniMax } from '../test/fixtures/fake-minimax.js'

const fake = await startFakeMiniMax({
  host: '127.0.0.1',
  port: Number(process.env.PORT),
  apiKey: process.env.FAKE_MINIMAX_API_KEY ?? 'test-key',
  // The submit scenario measures our overhead per create: MiniMax sends the challenge, answers, and then stays quiet.
  behaviour: { pushes: 'none', createDelayMs: 0 }
})

process.once('SIGTERM', () => { fake.close().then(() => process.exit(0), () => process.exit(1)) })
