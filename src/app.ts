// buildApp(): plugins, then routes, then the error and not-found handlers. Never listens, never reads the environment.
import type { Server } from 'node:http'
import Fastify, { type FastifyError, type FastifyHttpOptions, type onRouteHookHandler } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Logger } from 'pino'
import type { Config } from './config.js'
import { AppError, errorBody, errors, validationMessage, type ErrorCode } from './errors.js'
import { loggerOptions, redactUrl } from './logger.js'
import { AccessLog, addToAccessLog } from './lib/access-log.js'
import { buildValidator } from './lib/validators.js'
import { buildSerializer } from './lib/serializers.js'
import { fileURLToPath } from 'node:url'
import auth from './plugins/auth.js'
import database from './plugins/database.js'
import downloadLinks from './plugins/download-links.js'
import jsonBody from './plugins/json-body.js'
import metrics from './plugins/metrics.js'
import openapi from './plugins/openapi.js'
import providers from './plugins/providers.js'
import reconciler from './plugins/reconciler.js'
import archive from './plugins/archive.js'
import retention from './plugins/retention.js'
import secrets from './plugins/secrets.js'
import services from './plugins/services.js'
import sharedLimits, { rateLimitOptions } from './plugins/shared-limits.js'
import notifications from './plugins/notifications.js'
import taskWatch from './plugins/task-watch.js'
import taskEffects from './plugins/task-effects.js'
import callbackRoutes from './routes/callback.js'
import healthRoutes from './routes/health.js'
import queryRoute from './routes/query.js'
import filesRoutes from './routes/files.js'
import submitRoute from './routes/submit.js'
import tasksRoutes from './routes/tasks.js'
import taskActions from './routes/task-actions.js'
import deliveriesRoutes from './routes/deliveries.js'
import queueRoutes from './routes/queue.js'
import taskStreamRoute from './routes/task-stream.js'
import taskFeedRoute from './routes/task-feed.js'
import statsRoute from './routes/stats.js'
import sessionRoute from './routes/session.js'
import ui from './plugins/ui.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The validated configuration, for plugins. */
    config: Config
  }
  interface FastifyContextConfig {
    /** Errors on this route also carry MiniMax's base_resp, for MiniMax clients pointed at us. */
    minimaxErrors?: boolean
    /**
     * Refusals (4xx) on this route are answered with HTTP 200, as MiniMax answers business errors: MiniMax's clients
     * read base_resp only from a 2xx answer (minimax-mcp-js turns 1004 into its authentication error there, and
     * any other status into a generic "Request failed"). 5xx keep their status.
     */
    minimaxHttp200?: boolean
  }
}

export type App = Awaited<ReturnType<typeof buildApp>>

export type AppDependencies = {
  /** A ready pino logger (tests capture output with one); default: JSON to stdout at LOG_LEVEL. */
  logger?: Logger
  /** Sees every route as it is registered (the OpenAPI test checks each one is documented). */
  onRoute?: onRouteHookHandler
  /** The built dashboard; default dist/ui of this package (src/ and dist/ are both one level down). */
  uiRoot?: string
}

const DEFAULT_UI_ROOT = fileURLToPath(new URL('../dist/ui', import.meta.url))

// Codes for the 4xx errors Fastify and its plugins raise themselves.
const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  413: 'body_too_large',
  415: 'unsupported_media_type',
  416: 'range_not_satisfiable',
  429: 'rate_limited'
}
// Any other status Fastify or a plugin raises on its own (none is known today; the README lists it all the same).
const FALLBACK_CODE: ErrorCode = 'request_error'
// A locked database (another process's write lock) is usually a backup or a shell session: seconds, not minutes.
const DATABASE_BUSY_RETRY_AFTER_S = 1
// A PostgreSQL restart or failover takes seconds; the pool's connection timeout is 5 s.
const DATABASE_UNAVAILABLE_RETRY_AFTER_S = 5
// The MiniMax code a MiniMax client expects for our own refusals.
const MINIMAX_CODE_BY_STATUS: Record<number, number> = { 400: 2013, 401: 1004, 404: 2013, 413: 2013, 415: 2013, 422: 2013, 429: 1002, 503: 1000 }

// How often Node looks for requests past their timeouts: a trickling connection is closed at most this late.
const CONNECTIONS_CHECKING_INTERVAL_MS = 1000

export async function buildApp (config: Config, dependencies: AppDependencies = {}) {
  const options: FastifyHttpOptions<Server> = {
    ...(dependencies.logger ? { loggerInstance: dependencies.logger } : { logger: loggerOptions(config.LOG_LEVEL) }),
    // One access-log line per request (src/lib/access-log.ts) instead of Fastify's two.
    logController: new AccessLog(),
    // Fastify also takes a hop count, which its types do not list.
    trustProxy: config.TRUST_PROXY as boolean | string,
    requestIdHeader: 'x-request-id',
    // Above our longest id (callback tokens are 80 characters), so the params schemas give the clear 400s.
    routerOptions: { maxParamLength: 256 },
    // Fastify's default silently drops unknown body fields; we refuse them so typos and other models' fields are seen.
    // verbose: validation errors carry their schema, so a refusal can say which values or fields are accepted.
    ajv: { customOptions: { removeAdditional: false, verbose: true } },
    // Slow clients are bounded: a request must arrive whole within REQUEST_TIMEOUT_MS (Node answers 408 and closes), its
    // headers within HEADERS_TIMEOUT_MS; Node checks both only every 30 s unless told, so it checks every second.
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    http: { headersTimeout: config.HEADERS_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS },
    // Bodies are validated exactly as sent: no "prompt": 123 silently turned into a string. Validators and serialisers
    // are compiled on first use (start-up time), each response schema once (the error shape is on every route).
    schemaController: { compilersFactory: { buildValidator, buildSerializer } }
  }
  const app = Fastify(options).withTypeProvider<TypeBoxTypeProvider>()
  if (dependencies.onRoute) app.addHook('onRoute', dependencies.onRoute)

  // Once closing, answers end their keep-alive connection, or a client's idle socket would hold the shutdown open.
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id)
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })

  app.decorate('config', config)
  app.decorateRequest('accessLog', null)
  // Fastify reads text/plain bodies as strings, which then fail as "body must be object"; a JSON route answers 415
  // instead. The callback routes accept any content type with parsers of their own.
  app.removeContentTypeParser('text/plain')
  await app.register(jsonBody)
  await app.register(database, config.DATABASE_URL
    ? { kind: 'postgres', url: config.DATABASE_URL, poolSize: config.DATABASE_POOL_SIZE }
    : { kind: 'sqlite', path: config.DATABASE_PATH, synchronous: config.DATABASE_SYNCHRONOUS, busyTimeoutMs: config.DATABASE_BUSY_TIMEOUT_MS })
  // The create pace, the poll budgets and the per-caller rate limits, shared by every replica on PostgreSQL.
  await app.register(sharedLimits)
  // Per-route limits, counted by every replica together on PostgreSQL.
  await app.register(rateLimit, rateLimitOptions(app.rateLimitStore))
  await app.register(auth, { tokens: config.API_TOKENS, adminTokens: config.ADMIN_TOKENS })
  await app.register(providers)
  await app.register(services)
  await app.register(reconciler)
  await app.register(archive)
  await app.register(retention)
  // Notifications: the signed-webhook outbox and its worker, and the notifier long-polls and event streams wait on.
  await app.register(taskWatch)
  // The kept signing secrets (download links', the operator's and the callers' notification secrets).
  await app.register(secrets)
  // Signed download links: lookups, files/retrieve and the success notification carry them.
  await app.register(downloadLinks)
  await app.register(notifications)

  // Set before the routes are registered: a route plugin keeps the handlers in force when it was registered.
  app.setErrorHandler((thrown: FastifyError | AppError, request, reply) => {
    const err = app.taskStore.isBusy(thrown)
      ? errors.databaseBusy(DATABASE_BUSY_RETRY_AFTER_S)
      : app.taskStore.isUnavailable(thrown) ? errors.databaseUnavailable(DATABASE_UNAVAILABLE_RETRY_AFTER_S) : thrown
    if (err instanceof AppError) reply.headers(err.headers)
    const statusCode = err instanceof AppError ? err.statusCode : err.statusCode ?? 500
    const details: Record<string, unknown> = err instanceof AppError ? { ...err.details } : {}
    let code = err instanceof AppError ? err.code : CODE_BY_STATUS[statusCode] ?? FALLBACK_CODE
    let message = err.message
    if ('validation' in err && err.validation) {
      code = 'invalid_request'
      message = validationMessage(err.validation, err.validationContext)
    }
    if (statusCode >= 500 && !(err instanceof AppError)) {
      request.log.error({ err }, 'request failed')
      code = 'internal_error'
      message = 'internal error; the request id identifies it in our logs'
    } else if (statusCode >= 500) {
      request.log.warn({ err: { code, message } }, 'request refused')
    } else {
      // A refusal is part of the request's story, not a second line: its access-log line carries the code.
      addToAccessLog(request, { refused: { code, message } })
    }
    if (request.routeOptions.config.minimaxErrors && !details.base_resp) {
      details.base_resp = { status_code: MINIMAX_CODE_BY_STATUS[statusCode] ?? 1000, status_msg: message }
    }
    const answerStatus = request.routeOptions.config.minimaxHttp200 && statusCode < 500 ? 200 : statusCode
    return reply.code(answerStatus).send(errorBody(statusCode, code, message, { ...details, request_id: request.id }))
  })

  app.setNotFoundHandler((request, reply) => {
    // The path as logged, not as sent: an answer body can end up in a log too, and a misspelt callback path carries a token.
    reply.code(404).send(errorBody(404, 'not_found', `no route ${request.method} ${redactUrl(request.url.split('?')[0]!)}`, { request_id: request.id }))
  })

  // Observability and the API contract: after the handlers (their routes use them), before the routes (they watch them).
  await app.register(openapi)
  await app.register(metrics, { expose: config.METRICS_PORT === undefined })
  // What every change to a task sets off, subscribed in one place once all of it exists.
  await app.register(taskEffects)

  await app.register(healthRoutes)
  await app.register(callbackRoutes, { rateLimit: config.CALLBACK_RATE_LIMIT, bodyLimit: config.CALLBACK_BODY_LIMIT })
  await app.register(submitRoute, { rateLimit: config.SUBMIT_RATE_LIMIT, bodyLimit: config.SUBMIT_BODY_LIMIT })
  await app.register(tasksRoutes, { rateLimit: config.READ_RATE_LIMIT })
  await app.register(queryRoute, { rateLimit: config.READ_RATE_LIMIT })
  await app.register(filesRoutes, { rateLimit: config.READ_RATE_LIMIT })
  await app.register(taskActions, { refreshRateLimit: config.REFRESH_RATE_LIMIT, readRateLimit: config.READ_RATE_LIMIT })
  await app.register(taskStreamRoute, { rateLimit: config.READ_RATE_LIMIT, keepAliveMs: config.SSE_KEEPALIVE_MS })
  await app.register(deliveriesRoutes, { rateLimit: config.READ_RATE_LIMIT })
  await app.register(queueRoutes, { rateLimit: config.READ_RATE_LIMIT })
  await app.register(taskFeedRoute, { rateLimit: config.READ_RATE_LIMIT, keepAliveMs: config.SSE_KEEPALIVE_MS })
  await app.register(statsRoute, { rateLimit: config.READ_RATE_LIMIT })
  await app.register(sessionRoute, { rateLimit: config.READ_RATE_LIMIT })
  // The dashboard: a client of the routes above, nothing more.
  await app.register(ui, {
    root: dependencies.uiRoot ?? DEFAULT_UI_ROOT,
    mediaOrigins: [...new Set([config.MINIMAX_BASE_URL, config.MODELLIX_BASE_URL].map((url) => new URL(url).origin))]
  })

  return app
}
