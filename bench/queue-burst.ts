// The submit queue at MiniMax's real window: 60 submits from three callers at MINIMAX_SUBMIT_RPM=60 against the fake
// limited to 60 creates a minute (1002 past it, 2045 when two creates come closer than 500 ms). About 70 s.
// Run: npx tsx bench/queue-burst.ts   (prints the fake's own figures; kept out of npm test for its minute)
import { setTimeout as sleep } from 'node:timers/promises'
import { getJson, postJson, startStack, submitBody } from '../test/helper.js'

const RPM = 60
const WINDOW_MS = 60_000
const TOKENS = ['team-a:token-a', 'team-b:token-b', 'team-c:token-c']
const teardowns: Array<() => unknown> = []
const t = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }

const stack = await startStack(t, {
  env: { API_TOKENS: TOKENS.join(','), MINIMAX_SUBMIT_RPM: String(RPM), SUBMIT_RATE_LIMIT: '1000' },
  behaviour: { createRpm: RPM, createRpmWindowMs: WINDOW_MS, createBurstMs: 500 }
})
const auth = (i: number) => ({ authorization: `Bearer ${TOKENS[i % 3]!.split(':')[1]}` })
const started = Date.now()
const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => postJson(`${stack.url}/v1/video_generation`, submitBody({ prompt: `burst ${i}` }), auth(i))))
const statuses = answers.reduce<Record<number, number>>((counts, a) => ({ ...counts, [a.status]: (counts[a.status] ?? 0) + 1 }), {})
const pending = new Set(answers.map((a, i) => `${i}:${a.body.id}`))
const finished = new Map<string, string>()
while (pending.size > 0 && Date.now() - started < 150_000) {
  for (const entry of pending) {
    const [i, id] = entry.split(':') as [string, string]
    const task = (await getJson(`${stack.url}/v1/tasks/${id}`, auth(Number(i)))).body
    if (task.status === 'success' || task.status === 'failed') {
      finished.set(id, task.status)
      pending.delete(entry)
    }
  }
  await sleep(500)
}
const times = stack.fake.createTimes
let most = 0
for (let i = 0, j = 0; j < times.length; j++) {
  while (times[j]! - times[i]! >= WINDOW_MS) i++
  most = Math.max(most, j - i + 1)
}
const gaps = times.slice(1).map((at, i) => at - times[i]!)
const order = [...stack.fake.tasks.values()].map((task) => Number((task.body as { prompt: string }).prompt.split(' ')[1]) % 3)
console.log(JSON.stringify({
  answered: statuses,
  success: [...finished.values()].filter((s) => s === 'success').length,
  created: stack.fake.tasks.size,
  refused_by_fake: stack.fake.refusedCreates.length,
  max_creates_in_any_60s: most,
  min_gap_ms: Math.min(...gaps),
  first_to_last_create_s: ((times.at(-1)! - times[0]!) / 1000).toFixed(1),
  caller_order: order.join(''),
  wall_s: ((Date.now() - started) / 1000).toFixed(1)
}, null, 2))
for (const fn of teardowns.reverse()) await fn()
