import t, { type Test } from 'tap'
import Fastify from 'fastify'
import auth from '../../src/plugins/auth.js'
import { loadConfig, tokenFingerprintName } from '../../src/config.js'
import { AppError } from '../../src/errors.js'
import { build, postJson, startStack, submitBody } from '../helper.js'

// The plugin alone, behind a route that says who it saw.
async function whoAmI (t: Test, env: Record<string, string>) {
  const config = loadConfig(env)
  const app = Fastify()
  await app.register(auth, { tokens: config.API_TOKENS, adminTokens: config.ADMIN_TOKENS })
  app.setErrorHandler((err: AppError, _request, reply) => reply.code(err.statusCode).send({ code: err.code }))
  app.get('/who', { onRequest: app.authenticate }, async (request) => ({ caller: request.caller, isAdmin: request.isAdmin }))
  app.get('/ops', { onRequest: [app.authenticate, app.requireAdmin] }, async (request) => ({ caller: request.caller }))
  t.teardown(() => app.close())
  return async (token?: string, url = '/who') => {
    const response = await app.inject({ url, headers: token ? { authorization: `Bearer ${token}` } : {} })
    return { status: response.statusCode, body: response.json() }
  }
}

t.test('a token names its caller; ADMIN_TOKENS callers are admins', async (t) => {
  const as = await whoAmI(t, { API_TOKENS: 'team-a:tok-a,team-a:tok-a-next,tok-bare', ADMIN_TOKENS: 'ops:tok-ops' })
  t.same(await as('tok-a'), { status: 200, body: { caller: 'team-a', isAdmin: false } })
  t.same(await as('tok-a-next'), { status: 200, body: { caller: 'team-a', isAdmin: false } }, 'two tokens, one caller')
  t.same(await as('tok-bare'), { status: 200, body: { caller: tokenFingerprintName('tok-bare'), isAdmin: false } })
  t.same(await as('tok-ops'), { status: 200, body: { caller: 'ops', isAdmin: true } }, 'an admin is a valid caller')
  t.same(await as('tok-ops', '/ops'), { status: 200, body: { caller: 'ops' } })
  t.same(await as('tok-a', '/ops'), { status: 403, body: { code: 'admin_required' } })
  t.same(await as(), { status: 401, body: { code: 'unauthorized' } })
  t.same(await as('team-a:tok-a'), { status: 401, body: { code: 'unauthorized' } }, 'the name is not part of the token')
  t.same(await as('tok-'), { status: 401, body: { code: 'unauthorized' } })
})

t.test('ADMIN_TOKENS alone closes the routes too', async (t) => {
  const as = await whoAmI(t, { ADMIN_TOKENS: 'ops:tok-ops' })
  t.equal((await as()).status, 401)
  t.same((await as('tok-ops')).body, { caller: 'ops', isAdmin: true })
})

t.test('an open deployment calls everyone anonymous, and no one is an admin', async (t) => {
  const as = await whoAmI(t, {})
  t.same(await as(), { status: 200, body: { caller: 'anonymous', isAdmin: false } })
  t.same(await as('anything'), { status: 200, body: { caller: 'anonymous', isAdmin: false } })
  t.same(await as(undefined, '/ops'), { status: 403, body: { code: 'admin_required' } })
})

t.test('lookups and lists show the caller that submitted the task', async (t) => {
  const stack = await startStack(t, { env: { API_TOKENS: 'team-a:tok-a,tok-bare' } })
  const auth = (token: string) => ({ authorization: `Bearer ${token}` })
  const named = await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth('tok-a'))
  const bare = await postJson(`${stack.url}/v1/video_generation`, submitBody(), auth('tok-bare'))
  t.equal(named.status, 200)
  const byNamed = (await stack.app.inject({ url: `/v1/tasks/${named.body.id}`, headers: auth('tok-a') })).json()
  t.equal(byNamed.caller, 'team-a')
  const byBare = (await stack.app.inject({ url: `/v1/tasks/${bare.body.id}`, headers: auth('tok-bare') })).json()
  t.equal(byBare.caller, tokenFingerprintName('tok-bare'))
  const open = await build(t)
  t.same((await open.inject('/v1/tasks')).json().items, [])
})
