// GET /v1/me: the caller behind a token, for the dashboard's sign-in.
import t from 'tap'
import { build } from '../helper.js'

t.test('a known token answers its caller; another one is refused', async (t) => {
  const app = await build(t, { API_TOKENS: 'me-token' })
  const me = await app.inject({ url: '/v1/me', headers: { authorization: 'Bearer me-token' } })
  t.equal(me.statusCode, 200)
  t.match(me.json(), { caller: /^token:[0-9a-f]{16}$/, admin: true, open: false })
  t.notMatch(me.body, 'me-token', 'never the token itself')
  const wrong = await app.inject({ url: '/v1/me', headers: { authorization: 'Bearer nope' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'unauthorized')
})

t.test('an open deployment says so', async (t) => {
  const app = await build(t)
  t.same((await app.inject({ url: '/v1/me' })).json(), { caller: 'anonymous', admin: true, open: true })
})
