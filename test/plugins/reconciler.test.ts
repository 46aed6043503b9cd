// The reconciler plugin's configuration: a SUBMITTING_TIMEOUT_MS below its floor is raised, and the log says so.
import t from 'tap'
import { build, LogCapture } from '../helper.js'

t.test('SUBMITTING_TIMEOUT_MS below twice the create timeout is raised with a warning', async (t) => {
  const logs = new LogCapture()
  await build(t, { SUBMITTING_TIMEOUT_MS: '5000', MINIMAX_CREATE_TIMEOUT_MS: '30000' }, logs)
  const warning = logs.lines.find((line) => typeof line.msg === 'string' && line.msg.startsWith('SUBMITTING_TIMEOUT_MS'))
  t.match(warning, { level: 40, SUBMITTING_TIMEOUT_MS: 5000, used_ms: 60000, msg: /using 60000 ms instead/ })
})

t.test('a SUBMITTING_TIMEOUT_MS above its floor is used as is, without a warning', async (t) => {
  const logs = new LogCapture()
  await build(t, { SUBMITTING_TIMEOUT_MS: '600000', MINIMAX_CREATE_TIMEOUT_MS: '30000' }, logs)
  t.notOk(logs.lines.some((line) => String(line.msg).startsWith('SUBMITTING_TIMEOUT_MS')))
})
