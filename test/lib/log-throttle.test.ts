import t from 'tap'
import { LogThrottle } from '../../src/lib/log-throttle.js'

t.test('at most N lines a second; the next line admitted says how many were suppressed', async (t) => {
  let now = 10_000
  const throttle = new LogThrottle(3, () => now)
  const first = Array.from({ length: 10 }, () => throttle.admit())
  t.same(first.map((a) => a.log), [true, true, true, false, false, false, false, false, false, false])
  t.same(first[0], { log: true, suppressed: 0 })
  now += 999
  t.same(throttle.admit(), { log: false }, 'still the same second')
  now += 1
  t.same(throttle.admit(), { log: true, suppressed: 8 }, 'a new second: the count of the lines left out')
  t.same(throttle.admit(), { log: true, suppressed: 0 }, 'counted once')
  t.throws(() => new LogThrottle(0), RangeError)
})
