// The dispatcher's pacing: evenly spaced creates, never more than rpm in a window, one in flight, backoff on refusals.
import t from 'tap'
import { Pacer } from '../../src/services/pacing.js'

t.test('creates are spaced evenly (no burst when a window opens), one in flight at a time', async (t) => {
  const pacer = new Pacer(5, 60_000)
  t.ok(pacer.windowMs > 60_000 && pacer.windowMs <= 61_200, `the window has a safety margin (${pacer.windowMs} ms)`)
  t.equal(pacer.intervalMs, pacer.windowMs / 5)
  t.ok(pacer.tryTake(0), 'the first create goes at once')
  t.equal(pacer.waitMs(1), Infinity, 'nothing else while it is in flight')
  t.notOk(pacer.tryTake(1))
  pacer.release(1)
  t.equal(pacer.waitMs(1000), pacer.intervalMs - 1000, 'the next one waits for its slot, not for the window')
  t.notOk(pacer.tryTake(pacer.intervalMs - 1))
  t.ok(pacer.tryTake(pacer.intervalMs))
})

t.test('never more than rpm creates in any window, whatever the timing', async (t) => {
  const pacer = new Pacer(7, 10_000)
  const sent: number[] = []
  for (let now = 0; now < 100_000; now += 37) {
    if (pacer.tryTake(now)) {
      sent.push(now)
      pacer.release(now)
    }
  }
  let most = 0
  for (let i = 0, j = 0; j < sent.length; j++) {
    while (sent[j]! - sent[i]! >= 10_000) i++
    most = Math.max(most, j - i + 1)
  }
  t.ok(most <= 7, `at most 7 in any 10 s (saw ${most})`)
  t.ok(sent.length >= 60, `and the rate is used (${sent.length} in 100 s)`)
})

t.test('a slow answer counts from the answer: half an interval after it, and the window from it', async (t) => {
  const pacer = new Pacer(2, 10_000) // a 10,250 ms window with its margin: one create per 5,125 ms
  t.equal(pacer.intervalMs, 5125)
  t.ok(pacer.tryTake(0))
  pacer.release(4000)
  t.equal(pacer.waitMs(5125), 1437.5, 'the provider may have seen it just now: half an interval after the answer')
  t.ok(pacer.tryTake(6562.5))
  pacer.release(6562.5)
  t.equal(pacer.waitMs(11_687.5), 2562.5, 'the window counts the first create from its answer (4,000), not its start (0)')
})

t.test('a rate-limit refusal pauses the slot: the provider\'s hint, else doubling from one interval up to a window', async (t) => {
  const pacer = new Pacer(60, 60_000)
  t.ok(pacer.tryTake(0))
  pacer.release(0)
  t.equal(pacer.refused(0, 5000), 5000, 'the hint wins')
  t.equal(pacer.waitMs(0), 5000)
  t.equal(pacer.refused(0, null), pacer.intervalMs * 4, 'the second refusal in a row: four intervals')
  t.equal(pacer.refused(0, null), pacer.intervalMs * 8)
  for (let i = 0; i < 20; i++) pacer.refused(0, null)
  t.equal(pacer.waitMs(0), pacer.windowMs, 'capped at one window')
  pacer.accepted()
  t.equal(pacer.refused(100_000, null), pacer.intervalMs * 2, 'an accepted create starts the backoff over')
})
