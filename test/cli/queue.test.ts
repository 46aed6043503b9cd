// End to end: the queue's commands (`s2v cancel`, `s2v quota`, a queued task's status) against a service whose
// MiniMax creates are paced at one a minute, so a second submit waits in the queue.
import t from 'tap'
import { tempDir } from '../helper.js'
import { EXIT } from '../../src/cli/exit-codes.js'
import { runCli, startChildStack, SUBJECT_PNG, TOKEN } from './processes.js'

const stack = await startChildStack(t, { MINIMAX_SUBMIT_RPM: '1', SUBMIT_DAILY_QUOTA: '10' })
const home = tempDir(t)
const env = { S2V_URL: stack.url, S2V_TOKEN: TOKEN, HOME: home, XDG_CONFIG_HOME: `${home}/.config` }

t.test('a queued task: status shows its place, cancel fails it unsent, a second cancel is refused; quota counts', async t => {
  const first = await runCli(['submit', '--image', SUBJECT_PNG, '--json'], { env })
  t.equal(first.code, EXIT.ok, first.stderr)
  const second = await runCli(['submit', '--image', SUBJECT_PNG, '--json'], { env })
  t.equal(second.code, EXIT.ok, second.stderr)
  const queued = JSON.parse(second.stdout)
  t.match(queued, { id: /^[0-9a-f-]{36}$/, status: 'queued', queue: { position: 1 } }, 'the second create waits its turn')

  const status = await runCli(['status', queued.id, '--json'], { env })
  t.equal(status.code, EXIT.ok, status.stderr)
  t.match(JSON.parse(status.stdout), { id: queued.id, status: 'queued', task_id: null, queue: { position: 1 } })

  const quota = await runCli(['quota', '--json'], { env })
  t.equal(quota.code, EXIT.ok, quota.stderr)
  t.match(JSON.parse(quota.stdout), { limit: 10, used: 2, remaining: 8, queued: 1 })

  const cancelled = await runCli(['cancel', queued.id, '--json'], { env })
  t.equal(cancelled.code, EXIT.ok, cancelled.stderr)
  t.match(JSON.parse(cancelled.stdout), { id: queued.id, status: 'failed', error: { code: 'cancelled' } })

  const again = await runCli(['cancel', queued.id], { env })
  t.equal(again.code, EXIT.apiError, 'a task no longer queued cannot be cancelled')
  t.match(again.stderr, /not_cancellable/)

  const after = await runCli(['quota', '--json'], { env })
  t.match(JSON.parse(after.stdout), { used: 1, remaining: 9, queued: 0 }, 'a cancelled queued task gives its place back')
})
