// GET /v1/me: the caller behind a token and whether it is an operator, for the dashboard's sign-in.
import t from 'tap'
import { build } from '../helper.js'

t.test('a caller\'s token answers its name; an operator\'s says admin; an unknown one is refused', async (t) => {
  const app = await build(t, { API_TOKENS: 'alice:alice-token,bare-token', ADMIN_TOKENS: 'ops:ops-token' })
  const me = async (token: string) => await app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${token}` } })
  t.same((await me('alice-token')).json(), { caller: 'alice', admin: false, open: false })
  t.same((await me('ops-token')).json(), { caller: 'ops', admin: true, open: false })
  const bare = await me('bare-token')
  t.match(bare.json(), { caller: /^token:[0-9a-f]+$/, admin: false })
  t.notMatch(bare.body, 'bare-token', 'never the token itself')
  const wrong = await me('nope')
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'unauthorized')
})

t.test('an open deployment says so', async (t) => {
  const app = await build(t)
  t.same((await app.inject({ url: '/v1/me' })).json(), { caller: 'anonymous', admin: false, open: true })
})
