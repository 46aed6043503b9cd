// The API contract: /openapi.json is valid OpenAPI 3.1 and describes every registered route, status and error shape.
import t, { type Test } from 'tap'
import type { RouteOptions } from 'fastify'
import { Validator } from '@seriousme/openapi-schema-validator'
import { buildApp } from '../src/app.js'
import { testConfig } from './helper.js'

type Operation = {
  summary?: string
  description?: string
  tags?: string[]
  security?: Array<Record<string, string[]>>
  parameters?: Array<{ in: string, name: string, description?: string }>
  requestBody?: { content: Record<string, { example?: unknown, examples?: unknown, schema?: { examples?: unknown[] } }> }
  responses: Record<string, { description: string, content?: Record<string, { example?: unknown, examples?: unknown, schema?: Record<string, unknown> }> }>
}
type Document = { openapi: string, paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, unknown>, securitySchemes: Record<string, unknown> } }

// Routes of the interactive reference and the dashboard's static files, which the document leaves out on purpose.
const DOCS_ROUTES = /^\/(docs|ui)(\/|$)/

async function documented (t: Test, env: Record<string, string> = {}) {
  const routes: RouteOptions[] = []
  const app = await buildApp(testConfig(t, { API_TOKENS: 'doc-token', ...env }), { onRoute: (route) => { routes.push(route) } })
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/openapi.json' })
  t.equal(res.statusCode, 200, '/openapi.json needs no token')
  const listed = routes
    .flatMap((route) => [route.method].flat().map((method) => ({ method: method.toLowerCase(), route })))
    .filter(({ method, route }) => method !== 'head' && !DOCS_ROUTES.test(route.url))
  return { app, document: res.json() as Document, listed }
}

// /v1/tasks/:id → /v1/tasks/{id}
const openapiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}')

t.test('the document is valid OpenAPI 3.1', async (t) => {
  const { document } = await documented(t)
  t.equal(document.openapi, '3.1.0')
  const result = await new Validator().validate(document)
  t.ok(result.valid, JSON.stringify(result.errors ?? null, null, 2))
  t.ok(document.components.securitySchemes.bearer, 'the bearer scheme is declared')
})

t.test('every registered route is in the document, with a summary, a description and every status its schema declares', async (t) => {
  const { document, listed } = await documented(t)
  t.ok(listed.length >= 9, `${listed.length} routes registered`)
  const described = new Set<string>()
  for (const { method, route } of listed) {
    const name = `${method.toUpperCase()} ${route.url}`
    const operation = document.paths[openapiPath(route.url)]?.[method]
    if (!operation) {
      t.fail(`${name} is missing from the document`)
      continue
    }
    described.add(`${method} ${openapiPath(route.url)}`)
    t.ok(operation.summary, `${name} has a summary`)
    t.ok(operation.description, `${name} has a description`)
    t.ok(operation.tags?.length, `${name} has a tag`)
    const declared = Object.keys((route.schema?.response ?? {}) as Record<string, unknown>)
    t.ok(declared.length > 0, `${name} declares its responses`)
    t.same(Object.keys(operation.responses).sort(), declared.sort(), `${name}: one response per declared status`)
    for (const [status, response] of Object.entries(operation.responses)) {
      t.not(response.description, 'Default Response', `${name} ${status} is described`)
    }
    for (const parameter of operation.parameters ?? []) t.ok(parameter.description, `${name} ${parameter.in} ${parameter.name} is described`)
  }
  const extra = Object.entries(document.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path}`))
    .filter((operation) => !described.has(operation))
  t.same(extra, [], 'nothing documented that does not exist')
  t.notOk(Object.keys(document.paths).some((path) => DOCS_ROUTES.test(path)), '/docs routes are hidden')
})

t.test('internal routes need the bearer token, callbacks and health do not', async (t) => {
  const { document } = await documented(t)
  const security = (path: string, method: string) => document.paths[path]?.[method]?.security
  for (const [path, method] of [['/v1/video_generation', 'post'], ['/v1/tasks/{id}', 'get'], ['/v1/tasks', 'get'], ['/v1/query/video_generation', 'get'], ['/metrics', 'get']] as const) {
    t.same(security(path, method), [{ bearer: [] }], `${method} ${path}`)
  }
  for (const [path, method] of [['/get_callback/{token}', 'post'], ['/get_callback', 'post'], ['/healthz', 'get'], ['/readyz', 'get'], ['/openapi.json', 'get']] as const) {
    t.same(security(path, method), [], `${method} ${path} is public`)
  }
})

t.test('every error is the one ErrorResponse shape, and the answers carry x-request-id', async (t) => {
  const { document } = await documented(t)
  const shape = document.components.schemas.ErrorResponse as { properties: Record<string, unknown>, required: string[] }
  t.same(shape.required, ['statusCode', 'error', 'code', 'message'])
  t.ok(shape.properties.base_resp, 'with MiniMax\'s base_resp')
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) >= 400 && path !== '/readyz') {
          t.same(response.content?.['application/json']?.schema, { $ref: '#/components/schemas/ErrorResponse' }, `${method} ${path} ${status}`)
        }
        t.ok((response as { headers?: Record<string, unknown> }).headers?.['x-request-id'], `${method} ${path} ${status} has x-request-id`)
      }
    }
  }
})

t.test('the submit body and the task lookup answer have examples that match their schemas', async (t) => {
  const { app, document } = await documented(t)
  const submit = document.paths['/v1/video_generation']!.post!.requestBody!.content['application/json']!
  const submitExample = submit.example ?? submit.schema?.examples?.[0]
  t.ok(submitExample, 'submit body example')
  const lookup = document.paths['/v1/tasks/{id}']!.get!.responses['200']!.content!['application/json']!
  const lookupExample = (lookup.example ?? (lookup.schema?.examples as unknown[] | undefined)?.[0]) as { events?: unknown[] } | undefined
  t.ok(lookupExample?.events?.length, 'task lookup example with its history')
  t.ok(document.paths['/v1/query/video_generation']!.get!.responses['200']!.content!['application/json']!.example, 'query answer example')

  // The submit example is a body the service accepts (it fails at the provider, which is not configured here: 503).
  const res = await app.inject({ method: 'POST', url: '/v1/video_generation', headers: { authorization: 'Bearer doc-token' }, payload: submitExample as object })
  t.equal(res.statusCode, 503, 'the example passes validation')
})

t.test('the interactive reference is served from the package, without a CDN', async (t) => {
  const { app } = await documented(t)
  const page = await app.inject({ url: '/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!)
  t.ok(assets.some((asset) => asset.endsWith('.js')), 'it loads scripts')
  for (const asset of assets) {
    t.match(asset, /^\/docs\/static\//, `${asset} is served by this service`)
    t.equal((await app.inject({ url: asset })).statusCode, 200, asset)
  }
})

t.test('/docs (swagger-ui, loaded on first use) serves its page, assets and the same document; an unknown file is our 404', async (t) => {
  const { app } = await documented(t)
  const page = await app.inject({ url: '/docs/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.headers['x-request-id'], /./, 'answered by our app, with its request id')
  const css = await app.inject({ url: '/docs/static/swagger-ui.css' })
  t.equal(css.statusCode, 200)
  t.match(css.headers['content-type'], /text\/css/)
  t.ok(css.rawPayload.length > 10_000, 'the asset, whole')
  const json = await app.inject({ url: '/docs/json' })
  t.same(json.json(), (await app.inject({ url: '/openapi.json' })).json(), '/docs/json is /openapi.json')
  const missing = await app.inject({ url: '/docs/no-such-file.js' })
  t.equal(missing.statusCode, 404)
  t.match(missing.json(), { code: 'not_found' }, 'the one error shape')
})
