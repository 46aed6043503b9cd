// Request validators: compiled on first use, bodies exact and the other parts coerced, every route's schema compilable.
import t from 'tap'
import type { RouteOptions } from 'fastify'
import { buildApp } from '../../src/app.js'
import { buildEagerValidator, buildValidator } from '../../src/lib/validators.js'
import { testConfig } from '../helper.js'

const SCHEMA = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }
const PARTS = ['body', 'querystring', 'params', 'headers'] as const

t.test('a validator is compiled on its first call, not when Fastify asks for it', async (t) => {
  const compile = buildValidator({}, { customOptions: {} })
  const broken = compile({ schema: { type: 'no-such-type' }, httpPart: 'body' })
  t.throws(() => broken({}), /no-such-type|schema is invalid/, 'the bad schema is only seen when first used')
})

t.test('the lazy validator answers as the compiled one, errors included', async (t) => {
  const validate = buildValidator({}, { customOptions: {} })({ schema: SCHEMA, httpPart: 'body' })
  t.equal(validate({ n: 1 }), true)
  t.equal(validate({ n: 'x' }), false)
  t.match(validate.errors, [{ instancePath: '/n', keyword: 'type' }], 'the errors of the last call are on the function Fastify holds')
  t.equal(validate({ n: 2 }), true)
  t.equal(validate.errors, null, 'and cleared by a valid call')
})

t.test('bodies are validated as sent; query strings are coerced', async (t) => {
  const compile = buildValidator({}, { customOptions: { coerceTypes: 'array' } })
  const body = { n: '1' }
  t.equal(compile({ schema: SCHEMA, httpPart: 'body' })(body), false, 'a string is not an integer in a body')
  const query = { n: '1' }
  t.equal(compile({ schema: SCHEMA, httpPart: 'querystring' })(query), true)
  t.same(query, { n: 1 }, 'the query value became a number')
})

t.test('every schema of every route compiles (what start-up used to prove)', async (t) => {
  const routes: RouteOptions[] = []
  const app = await buildApp(testConfig(t, { API_TOKENS: 'a:token' }), { onRoute: (route) => { routes.push(route) } })
  t.teardown(() => app.close())
  await app.ready()
  const compile = buildEagerValidator({}, { customOptions: { removeAdditional: false, verbose: true } })
  let compiled = 0
  for (const route of routes) {
    for (const part of PARTS) {
      const schema = route.schema?.[part]
      if (schema === undefined) continue
      t.doesNotThrow(() => compile({ schema: schema as object, httpPart: part, method: String(route.method), url: route.url }), `${String(route.method)} ${route.url} ${part}`)
      compiled += 1
    }
  }
  t.ok(compiled > 20, `${compiled} request schemas compiled`)
})
