import t from 'tap'
import { randomUUID } from 'node:crypto'
import { newCallbackToken, parseCallbackToken, secretMatches } from '../../src/lib/callback-token.js'

t.test('a token names its task, carries an unguessable secret, and only its hash is kept', async (t) => {
  const id = randomUUID()
  const { token, hash } = newCallbackToken(id)
  const parsed = parseCallbackToken(token)
  t.equal(parsed?.id, id)
  t.equal(parsed?.secret.length, 43, '32 random bytes')
  t.notOk(hash.toString('hex').includes(parsed!.secret))
  t.ok(secretMatches(parsed!.secret, hash))
  t.notOk(secretMatches(parsed!.secret.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), hash), 'one character off fails')
  t.not(newCallbackToken(id).token, token, 'fresh secret each time')
})

t.test('anything else is not a token', async (t) => {
  for (const bad of ['', 'abc', `${randomUUID()}.short`, `${randomUUID()}`, `../${randomUUID()}.${'a'.repeat(43)}`]) {
    t.equal(parseCallbackToken(bad), null, JSON.stringify(bad))
  }
})
