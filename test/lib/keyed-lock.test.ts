// KeyedLock: one section at a time per key, in arrival order; other keys meanwhile; a failure frees the key.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { KeyedLock } from '../../src/lib/keyed-lock.js'

t.test('sections of one key run one at a time, in arrival order; another key does not wait', async (t) => {
  const lock = new KeyedLock()
  const log: string[] = []
  const section = (name: string, ms: number) => async () => {
    log.push(`${name} in`)
    await sleep(ms)
    log.push(`${name} out`)
    return name
  }
  const results = await Promise.all([
    lock.run('a', section('a1', 30)),
    lock.run('a', section('a2', 1)),
    lock.run('b', section('b1', 5))
  ])
  t.same(results, ['a1', 'a2', 'b1'])
  t.same(log, ['a1 in', 'b1 in', 'b1 out', 'a1 out', 'a2 in', 'a2 out'])
})

t.test('a failing section rejects its caller and lets the next one run', async (t) => {
  const lock = new KeyedLock()
  const failing = lock.run('a', async () => { throw new Error('no') })
  const next = lock.run('a', async () => 'ran')
  await t.rejects(failing, /no/)
  t.equal(await next, 'ran')
})
