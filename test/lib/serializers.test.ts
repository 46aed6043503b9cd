// Response serialisers: compiled on first use, one per schema object, every route's response schema compilable.
import t from 'tap'
import type { RouteOptions } from 'fastify'
import SerializerSelector from '@fastify/fast-json-stringify-compiler'
import { buildApp } from '../../src/app.js'
import { buildSerializer } from '../../src/lib/serializers.js'
import { testConfig } from '../helper.js'

const ROUTE = { method: 'GET', url: '/x', httpStatus: '200' }
const SCHEMA = { type: 'object', properties: { id: { type: 'string' } } }

t.test('a serialiser is compiled on its first call, not when Fastify asks for it', async (t) => {
  const compile = buildSerializer({}, {})
  const broken = compile({ ...ROUTE, schema: { type: 'object', properties: { a: { $ref: '#/nowhere' } } } })
  t.throws(() => broken({ a: 1 }), 'the bad schema is only seen when first used')
})

t.test('the serialiser writes only what the schema declares, for every route that shares the schema', async (t) => {
  const compile = buildSerializer({}, {})
  const first = compile({ ...ROUTE, schema: SCHEMA })
  const second = compile({ ...ROUTE, url: '/y', schema: SCHEMA })
  t.equal(first({ id: 'a', secret: 's' }), '{"id":"a"}')
  t.equal(second({ id: 'b', secret: 's' }), '{"id":"b"}')
})

t.test('every response schema of every route compiles (what start-up used to prove)', async (t) => {
  const routes: RouteOptions[] = []
  const app = await buildApp(testConfig(t, { API_TOKENS: 'a:token' }), { onRoute: (route) => { routes.push(route) } })
  t.teardown(() => app.close())
  await app.ready()
  // The compiler buildSerializer defers to, called at once: compiling is what is checked, not serialising.
  const compile = SerializerSelector()({}, {})
  let compiled = 0
  for (const route of routes) {
    for (const [status, declared] of Object.entries((route.schema?.response ?? {}) as Record<string, { content?: Record<string, { schema: unknown }> }>)) {
      // A status either has one JSON schema or one per content type (as Fastify reads them).
      const schemas = declared.content ? Object.values(declared.content).map((media) => media.schema) : [declared]
      for (const schema of schemas) {
        t.doesNotThrow(() => compile({ method: String(route.method), url: route.url, httpStatus: status, schema }), `${String(route.method)} ${route.url} ${status}`)
        compiled += 1
      }
    }
  }
  t.ok(compiled > 50, `${compiled} response schemas compiled`)
})
