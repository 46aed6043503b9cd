// The API contract: an OpenAPI 3.1 document generated from the route schemas, at /openapi.json, and a reference at /docs.
// Both are built on the first request for them, in an app of their own: @fastify/swagger, @fastify/swagger-ui and their
// dependencies (YAML, a second @fastify/static) are loaded then, not at start-up (~0.1 s of it).
import { readFileSync } from 'node:fs'
import fp from 'fastify-plugin'
import Fastify, { type FastifyInstance, type RouteOptions } from 'fastify'
import { Type } from 'typebox'
import { forwardTo, lazyApp } from '../lib/lazy-app.js'

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

// Tags by path, so every route lands in a group without each route file repeating it (a route's own tags win).
const TAG_BY_PREFIX: Array<[prefix: string, tag: string]> = [
  ['/get_callback', 'callbacks'],
  ['/v1/deliveries', 'notifications'],
  ['/v1/notifications', 'notifications'],
  ['/v1/', 'tasks']
]
const DEFAULT_TAG = 'operations'

const TAGS = [
  { name: 'tasks', description: 'Submit generations and look tasks up (MiniMax-compatible shapes where MiniMax has one)' },
  { name: 'callbacks', description: 'Called by MiniMax only: the challenge handshake and status pushes' },
  { name: 'notifications', description: 'Signed messages we send to a task\'s notify_url: deliveries, replays, the signing secrets' },
  { name: 'operations', description: 'Health, metrics and this document' }
]

const DESCRIPTION = 'One service for MiniMax\'s S2V-01 (subject reference) video model: submit with MiniMax\'s own body, and this ' +
  'service answers MiniMax\'s callbacks, keeps every status in SQLite and answers lookups. Every error has one JSON shape ' +
  '(`ErrorResponse`); errors of the MiniMax-compatible routes also carry MiniMax\'s `base_resp`. Every answer carries an ' +
  '`x-request-id` header (an incoming one is kept).'

const OpenApiDocument = Type.Record(Type.String(), Type.Unknown(), { description: 'An OpenAPI 3.1 document' })

// What each error status means on this API; the body is always the one ErrorResponse shape, whose `code` says more.
const ERROR_DESCRIPTIONS: Record<string, string> = {
  400: 'Bad input: a schema violation (invalid_request), malformed JSON (bad_request) or a refused value (callback_url_not_allowed, image_too_large, metadata_too_large, invalid_cursor, invalid_push, invalid_params)',
  401: 'No valid bearer token (unauthorized); on the callback routes, a push without its task\'s own token (callback_token_required, unknown_callback_token, token_task_mismatch)',
  402: 'MiniMax refused the create: insufficient balance (insufficient_balance)',
  404: 'No such task (not_found)',
  409: 'The first request with this Idempotency-Key is in flight or its outcome is unknown (idempotency_key_in_progress, with the task id)',
  413: 'The body is over the route\'s limit (body_too_large)',
  415: 'A content type this route does not read (unsupported_media_type)',
  422: 'Idempotency-Key reused with another body (idempotency_key_reused), or MiniMax refused the content (sensitive_content)',
  429: 'Rate limited: by us (rate_limited) or by MiniMax (provider_rate_limited); retry later',
  500: 'Our bug (internal_error); request_id finds it in our logs',
  502: 'MiniMax refused, failed or could not be reached (provider_error, provider_auth_failed, callback_check_failed, provider_unreachable); submit_outcome_unknown means the task may exist: look it up by id, do not resubmit',
  503: 'This service cannot submit: no provider key configured (provider_not_configured)',
  504: 'MiniMax did not answer in time (submit_outcome_unknown): the task stays submitting and a later push still resolves it'
}

type Media = { schema?: { title?: string } & Record<string, unknown> }
type Response = { description: string, headers?: Record<string, unknown>, content?: Record<string, Media> }
type Document = {
  components: { schemas?: Record<string, unknown>, headers?: Record<string, unknown> }
  paths?: Record<string, Record<string, { responses?: Record<string, Response> }>>
}

/**
 * Finishes the generated document: the error shape, inlined by each route, becomes one component with a description per
 * status, and every response declares the x-request-id header.
 */
export function finishDocument<T> (generated: T): T {
  const document = generated as Document
  document.components.headers = {
    ...document.components.headers,
    'x-request-id': { description: 'This request\'s id (an incoming x-request-id is kept); it is on every log line of the request', schema: { type: 'string' } }
  }
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        response.headers = { 'x-request-id': { $ref: '#/components/headers/x-request-id' }, ...response.headers }
        const media = response.content?.['application/json']
        if (media?.schema?.title !== 'ErrorResponse') continue
        document.components.schemas = { ...document.components.schemas, ErrorResponse: document.components.schemas?.ErrorResponse ?? media.schema }
        media.schema = { $ref: '#/components/schemas/ErrorResponse' }
        response.description = ERROR_DESCRIPTIONS[status] ?? response.description
      }
    }
  }
  return generated
}

const DOCS_PREFIX = '/docs'

export default fp(async (app) => {
  // Security is read off the route itself (does it run app.authenticate?), so the document cannot drift from the code.
  const isProtected = (route: RouteOptions): boolean => [route.onRequest ?? []].flat().includes(app.authenticate)

  // Every route registered from now on, as @fastify/swagger would collect it (HEAD twins left out, as it does).
  const routes: RouteOptions[] = []
  app.addHook('onRoute', (route) => {
    if (route.method !== 'HEAD' && !route.url.startsWith(DOCS_PREFIX)) routes.push(route)
  })

  const docsApp = lazyApp(() => buildDocsApp(routes, isProtected))

  app.get('/openapi.json', {
    schema: {
      summary: 'This API\'s OpenAPI 3.1 document',
      description: 'Generated from the route schemas on first request; public, like /docs (the interactive reference).',
      response: { 200: OpenApiDocument }
    }
  }, async () => (await docsApp()).swagger() as unknown as Record<string, unknown>)

  // The interactive reference: answered by the docs app, its status, headers and bytes passed on as they are.
  const forward = forwardTo(docsApp)
  app.get(DOCS_PREFIX, { schema: { hide: true } }, forward)
  app.get(`${DOCS_PREFIX}/*`, { schema: { hide: true } }, forward)
}, { name: 'openapi', dependencies: ['auth'] })

/** An app that only documents: the collected routes registered again (never run), @fastify/swagger and swagger-ui. */
async function buildDocsApp (routes: RouteOptions[], isProtected: (route: RouteOptions) => boolean): Promise<FastifyInstance> {
  const [{ default: swagger }, { default: swaggerUi }] = await Promise.all([import('@fastify/swagger'), import('@fastify/swagger-ui')])
  const docs = Fastify({ exposeHeadRoutes: false, routerOptions: { maxParamLength: 256 } })
  // The schemas are only read, never run: nothing is compiled.
  docs.setValidatorCompiler(() => () => true)
  docs.setSerializerCompiler(() => (data) => JSON.stringify(data))
  await docs.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 's2v-callback', version, description: DESCRIPTION },
      tags: TAGS,
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'One of API_TOKENS (a caller: sees its own tasks) or ADMIN_TOKENS (an operator: sees every task); required on the internal routes when either is set' }
        }
      }
    },
    transform: ({ schema, url, route }) => {
      const tag = TAG_BY_PREFIX.find(([prefix]) => url.startsWith(prefix))?.[1] ?? DEFAULT_TAG
      return {
        url,
        schema: {
          ...schema,
          tags: schema.tags ?? [tag],
          security: schema.security ?? (isProtected(route) ? [{ bearer: [] }] : [])
        }
      }
    },
    transformObject: (documentObject) => finishDocument('openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject)
  })
  // Assets come from the package itself (no CDN); its own routes are hidden from the document.
  await docs.register(swaggerUi, { routePrefix: DOCS_PREFIX, uiConfig: { docExpansion: 'list', deepLinking: true } })
  const handler = async () => null
  for (const route of routes) {
    docs.route({ method: route.method, url: route.url, schema: route.schema, config: route.config, constraints: route.constraints, onRequest: route.onRequest, handler } as RouteOptions)
  }
  await docs.ready()
  return docs
}
