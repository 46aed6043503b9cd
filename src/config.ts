// The one environment schema and the one Config type; loadConfig() is the only reader of the environment.
import { createHash } from 'node:crypto'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

const MIB = 1024 * 1024

// Providers and reconciliation (polling when pushes do not come), the result video, retention.
const PROVIDER_SETTINGS = {
  DEFAULT_PROVIDER: Type.Enum(['minimax', 'modellix'], { default: 'minimax', description: 'Provider used when a submit names none' }),
  MODELLIX_API_KEY: Type.Optional(Type.String({ minLength: 1, description: 'Modellix API key; without it provider "modellix" answers 503' })),
  MODELLIX_BASE_URL: Type.String({ pattern: '^https?://\\S+$', default: 'https://api.modellix.ai', description: 'Modellix host (or a fake)' }),
  MODELLIX_SUBMIT_PATH: Type.String({ pattern: '^/\\S*$', default: '/api/v1/minimax/minimax-s2v-01/async', description: 'Modellix submit path (newer clients use it without /async)' }),
  PROVIDER_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 10_000, description: 'Timeout of status queries and file look-ups' }),
  RECONCILE_AFTER_MS: Type.Integer({ minimum: 0, default: 120_000, description: 'Poll MiniMax about a task after this long without news' }),
  RECONCILE_BACKOFF_MS: Type.Integer({ minimum: 10, default: 30_000, description: 'First pause between polls that bring no news; doubles each time' }),
  RECONCILE_BACKOFF_MAX_MS: Type.Integer({ minimum: 10, default: 300_000, description: 'Longest pause between polls of one task' }),
  MODELLIX_POLL_MS: Type.Integer({ minimum: 10, default: 2_000, description: 'First pause between Modellix polls (no callbacks there); grows to MODELLIX_POLL_MAX_MS' }),
  MODELLIX_POLL_MAX_MS: Type.Integer({ minimum: 10, default: 10_000, description: 'Longest pause between Modellix polls' }),
  MINIMAX_POLL_BUDGET: Type.Integer({ minimum: 1, default: 10, description: 'MiniMax calls per minute the reconciler may make (queries, file look-ups), shared by all tasks' }),
  MODELLIX_POLL_BUDGET: Type.Integer({ minimum: 1, default: 60, description: 'Modellix calls per minute the reconciler may make' }),
  RECONCILE_TICK_MS: Type.Integer({ minimum: 10, default: 1_000, description: 'How often the reconciler looks for due work' }),
  SUBMITTING_TIMEOUT_MS: Type.Integer({ minimum: 1_000, default: 600_000, description: 'A task still "submitting" (create outcome unknown, no push) this long after creation is failed with submit_outcome_unknown' }),
  TASK_DEADLINE_MS: Type.Integer({ minimum: 1_000, default: 7_200_000, description: 'A task not finished this long after creation is failed with a timeout, after one last poll' }),
  LATE_RESULT_WINDOW_MS: Type.Integer({ minimum: 0, default: 86_400_000, description: 'After this service fails a task on its own (submit_outcome_unknown, timeout), keep polling the provider for its verdict this long (0: never)' }),
  LATE_RESULT_POLL_MS: Type.Integer({ minimum: 1_000, default: 3_600_000, description: 'How often such a task is polled during LATE_RESULT_WINDOW_MS (within the poll budget)' }),
  REFRESH_RATE_LIMIT: Type.Integer({ minimum: 1, default: 10, description: 'POST /v1/tasks/:id/refresh per minute per caller' }),
  VIDEO_DIR: Type.Optional(Type.String({ minLength: 1, description: 'Keep our own copy of every finished video in this folder (off when unset)' })),
  VIDEO_ALLOW_PRIVATE: Type.Boolean({ default: false, description: 'Allow archive downloads over plain http and from loopback, private and link-local addresses (refused by default: SSRF; a local fake provider needs it)' }),
  VIDEO_MAX_BYTES: Type.Integer({ minimum: 1, default: 512 * MIB, description: 'Largest video the archive downloads' }),
  RETENTION_DAYS: Type.Integer({ minimum: 0, default: 0, description: 'Purge finished tasks, their history and archived files after this many days (0: keep forever)' })
}

// Notifications to callers (signed webhooks with retries) and waiting clients (long-poll, server-sent events).
const WHSEC = 'whsec_[A-Za-z0-9+/]{32,}={0,2}'
const SECONDS = '\\d+(\\.\\d+)?'
const NOTIFICATION_SETTINGS = {
  NOTIFY_URL: Type.Optional(Type.String({ pattern: '^https?://\\S+$', description: 'Receives a signed POST for every status change of every task (besides each task\'s own notify_url)' })),
  NOTIFY_SECRET: Type.Optional(Type.String({
    pattern: `^\\s*${WHSEC}\\s*(,\\s*${WHSEC}\\s*)*$`,
    description: 'Comma-separated Standard Webhooks secrets (whsec_ + at least 24 bytes in base64); each signs every message (rotation). Unset: one is generated on first start and kept in the database'
  })),
  NOTIFY_ALLOW_PRIVATE: Type.Boolean({ default: false, description: 'Allow notify URLs on loopback, private and link-local addresses (refused by default: SSRF)' }),
  NOTIFY_RETRY_SCHEDULE: Type.String({
    pattern: `^\\s*${SECONDS}\\s*(,\\s*${SECONDS}\\s*)*$`,
    default: '5,300,1800,7200,18000,36000,36000',
    description: 'Seconds to wait after each failed attempt (±20 % jitter); after the last, the delivery is dead'
  }),
  NOTIFY_TIMEOUT_MS: Type.Integer({ minimum: 10, default: 15_000, description: 'How long one delivery attempt may take' }),
  SSE_KEEPALIVE_MS: Type.Integer({ minimum: 10, default: 15_000, description: 'Interval of the keep-alive comment on GET /v1/tasks/:id/events' })
}

// The submit queue: creates paced within each provider's rate limit, fair between callers, with per-caller limits.
const QUEUE_SETTINGS = {
  MINIMAX_SUBMIT_RPM: Type.Integer({ minimum: 1, default: 5, description: 'Creates sent to MiniMax in any SUBMIT_RPM_WINDOW_MS (MiniMax allows 5 video generations a minute on a standard account, shared by its sub-accounts)' }),
  MODELLIX_SUBMIT_RPM: Type.Integer({ minimum: 1, default: 60, description: 'Creates sent to Modellix in any SUBMIT_RPM_WINDOW_MS' }),
  SUBMIT_RPM_WINDOW_MS: Type.Integer({ minimum: 100, default: 60_000, description: 'The window the *_SUBMIT_RPM limits count over: a minute, as the providers count; shorter only to test quickly' }),
  MAX_QUEUED_PER_CALLER: Type.Integer({ minimum: 1, default: 1000, description: 'Queued tasks one caller may have; beyond them a submit answers 429 queue_full' }),
  SUBMIT_DAILY_QUOTA: Type.Integer({ minimum: 0, default: 0, description: 'Submits per caller per UTC day (0: no quota); beyond it 429 quota_exceeded' }),
  CALLER_QUOTAS: Type.String({
    pattern: '^\\s*([^,:\\s][^,]*:\\s*\\d+\\s*(,\\s*[^,:\\s][^,]*:\\s*\\d+\\s*)*)?$',
    default: '',
    description: 'Per-caller daily quotas overriding SUBMIT_DAILY_QUOTA: caller:n,caller:n (0: no quota for that caller)'
  }),
  QUEUE_MAX_WAIT_MS: Type.Integer({ minimum: 1000, default: 86_400_000, description: 'A task queued longer than this fails with queue_timeout, never sent' })
}

// Signed download links of this service (GET /v1/files/download/:id): lookups, files/retrieve, notifications.
const DOWNLOAD_LINK_SETTINGS = {
  DOWNLOAD_LINK_SECRET: Type.Optional(Type.String({
    minLength: 32,
    pattern: '^\\S+$',
    description: 'HMAC key of signed download links (at least 32 characters; instances behind one URL share it). Unset: one is generated on first start and kept in the database'
  })),
  DOWNLOAD_LINK_TTL_S: Type.Integer({ minimum: 60, maximum: 7 * 86_400, default: 3_600, description: 'Seconds a signed download link of a lookup or files/retrieve answer works' }),
  DOWNLOAD_LINK_NOTIFY_TTL_S: Type.Integer({
    minimum: 60,
    maximum: 30 * 86_400,
    default: 172_800,
    description: 'Seconds a signed download link in a notification works (longer than the retry schedule, ~27.5 h, so a late delivery still carries a working link)'
  })
}

// Slow and greedy clients: how long a request may take to arrive, how long idle connections stay, how many may wait.
const CONNECTION_SETTINGS = {
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1_000, default: 60_000, description: 'Longest time to receive a whole request, headers and body (a 30 MB submit on a slow link must fit); the connection is then closed with 408' }),
  HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 1_000, default: 10_000, description: 'Longest time to receive a request\'s headers (at most REQUEST_TIMEOUT_MS)' }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 1_000, default: 72_000, description: 'How long an idle keep-alive connection stays open (above the 60 s idle timeout of common load balancers)' }),
  MAX_WAITERS_PER_CALLER: Type.Integer({ minimum: 1, default: 100, description: 'Long-polls and event streams one caller may hold open at once; beyond, 429 too_many_waiters' }),
  MAX_WAITERS: Type.Integer({ minimum: 1, default: 10_000, description: 'Long-polls and event streams open at once over all callers; beyond, 429 too_many_waiters' })
}

export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'TCP port to listen on' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Address to listen on' }),
  DATABASE_URL: Type.Optional(Type.String({
    pattern: '^postgres(ql)?://\\S+$',
    description: 'postgres://user:password@host:5432/db selects PostgreSQL, shared by any number of replicas (DATABASE_PATH, DATABASE_SYNCHRONOUS and DATABASE_BUSY_TIMEOUT_MS are then unused); unset: SQLite at DATABASE_PATH'
  })),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'PostgreSQL connections this replica may open (the replicas share the server\'s max_connections)' }),
  DATABASE_PATH: Type.String({ minLength: 1, default: './data/s2v.db', description: 'SQLite file; its folder is created if missing' }),
  DATABASE_SYNCHRONOUS: Type.Enum(['FULL', 'NORMAL'], {
    default: 'FULL',
    description: 'SQLite synchronous mode: FULL survives power loss, NORMAL (WAL) survives process crashes only'
  }),
  DATABASE_BUSY_TIMEOUT_MS: Type.Integer({
    minimum: 0,
    maximum: 1000,
    default: 100,
    description: 'How long a write waits for a lock another process holds (a backup, the sqlite3 shell) before failing with 503 database_busy; the event loop waits with it, so at most 1 s (MiniMax allows 3 s for a challenge)'
  }),
  PUBLIC_BASE_URL: Type.Optional(Type.String({
    pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$',
    description: 'URL at which MiniMax reaches this service (no query or fragment); default http://127.0.0.1:PORT, which only a local fake can reach'
  })),
  MINIMAX_API_KEY: Type.Optional(Type.String({ minLength: 1, description: 'MiniMax API key; without it submits answer 503' })),
  MINIMAX_BASE_URL: Type.String({ pattern: '^https?://\\S+$', default: 'https://api.minimax.io', description: 'MiniMax host (https://api.minimaxi.com in mainland China, or a fake)' }),
  MINIMAX_CREATE_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 300_000, default: 30_000, description: 'Give up waiting for a create answer after this long (the outcome is then unknown)' }),
  API_TOKENS: Type.String({ default: '', description: 'Comma-separated bearer tokens of the callers, each name:token or a bare token (named by its fingerprint); with ADMIN_TOKENS empty too, the internal routes are open' }),
  ADMIN_TOKENS: Type.String({ default: '', description: 'Comma-separated bearer tokens of the operators (same format as API_TOKENS); admins are callers who see every caller\'s tasks' }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', description: 'pino log level' }),
  SUBMIT_RATE_LIMIT: Type.Integer({ minimum: 1, default: 60, description: 'Submits per minute per caller (bearer token, else client address)' }),
  READ_RATE_LIMIT: Type.Integer({ minimum: 1, default: 1200, description: 'Lookups per minute per caller' }),
  CALLBACK_RATE_LIMIT: Type.Integer({ minimum: 1, default: 120, description: 'Status pushes per minute for each task, counted only once the push\'s token is the task\'s own (challenges and forged pushes are never counted)' }),
  SUBMIT_BODY_LIMIT: Type.Integer({ minimum: 1024, default: 30 * MIB, description: 'Largest submit body in bytes (a 20 MB image as a base64 data URL is ~26.7 MB)' }),
  CALLBACK_BODY_LIMIT: Type.Integer({ minimum: 256, default: 64 * 1024, description: 'Largest callback body in bytes' }),
  TRUST_PROXY: Type.String({ default: 'false', description: 'Fastify trustProxy: false, true, a hop count, or comma-separated addresses/CIDRs of trusted proxies' }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, default: 10_000, description: 'How long in-flight requests may take to finish on SIGTERM/SIGINT' }),
  ...CONNECTION_SETTINGS,
  // Observability
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'Serve GET /metrics on this port only (no token; keep it private); unset: on PORT, behind API_TOKENS' })),
  ...PROVIDER_SETTINGS,
  ...NOTIFICATION_SETTINGS,
  ...QUEUE_SETTINGS,
  ...DOWNLOAD_LINK_SETTINGS
})

type Env = Static<typeof ConfigSchema>

/** One bearer token and the caller name it stands for (tasks, rate limits and idempotency keys are scoped by name). */
export type CallerToken = { name: string, token: string }

export type Config = Omit<Env, 'PUBLIC_BASE_URL' | 'API_TOKENS' | 'ADMIN_TOKENS' | 'TRUST_PROXY' | 'CALLER_QUOTAS'> & {
  PUBLIC_BASE_URL: string
  API_TOKENS: CallerToken[]
  ADMIN_TOKENS: CallerToken[]
  TRUST_PROXY: boolean | number | string
  /** Daily submit quota by caller name. */
  CALLER_QUOTAS: Record<string, number>
}

// Values never echoed in an error message: they would land in logs.
const SECRET = /(_KEY|_SECRET|_TOKENS|^DATABASE_URL)$/

export class ConfigError extends Error {
  override name = 'ConfigError'
}

// Validates the environment once, at start-up; the message names every bad variable.
export function loadConfig (env: Record<string, string | undefined>): Config {
  const known: Record<string, string> = {}
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key]?.trim()
    if (value) known[key] = value // an empty variable (KEY= in .env) means "use the default"
  }
  const parsed = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, known))
  const problems = new Map<string, string>()
  for (const error of Value.Errors(ConfigSchema, parsed)) {
    const name = error.instancePath.slice(1)
    if (!problems.has(name)) problems.set(name, `${name} ${error.message}${allowed(error.params)} (got ${SECRET.test(name) ? 'a value that is not shown' : JSON.stringify(known[name])})`)
  }
  if (problems.size === 0 && (parsed as Env).HEADERS_TIMEOUT_MS > (parsed as Env).REQUEST_TIMEOUT_MS) {
    problems.set('HEADERS_TIMEOUT_MS', 'HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS (Node refuses it)')
  }
  if (problems.size > 0) throw new ConfigError(`invalid configuration: ${[...problems.values()].join('; ')}`)

  const valid = parsed as Env
  const callers = parseTokens('API_TOKENS', valid.API_TOKENS, problems)
  const admins = parseTokens('ADMIN_TOKENS', valid.ADMIN_TOKENS, problems)
  checkTokenNames(callers, admins, problems)
  if (problems.size > 0) throw new ConfigError(`invalid configuration: ${[...problems.values()].join('; ')}`)
  return {
    ...valid,
    PUBLIC_BASE_URL: (valid.PUBLIC_BASE_URL ?? `http://127.0.0.1:${valid.PORT}`).replace(/\/+$/, ''),
    MINIMAX_BASE_URL: valid.MINIMAX_BASE_URL.replace(/\/+$/, ''),
    API_TOKENS: callers,
    ADMIN_TOKENS: admins,
    TRUST_PROXY: parseTrustProxy(valid.TRUST_PROXY),
    CALLER_QUOTAS: parseCallerQuotas(valid.CALLER_QUOTAS)
  }
}

// "name:n,name:n"; a name may itself hold a colon (a bare token's name 'token:<hex>'), so the count follows the last one.
function parseCallerQuotas (value: string): Record<string, number> {
  const quotas: Record<string, number> = {}
  for (const entry of value.split(',').map((part) => part.trim()).filter(Boolean)) {
    const colon = entry.lastIndexOf(':')
    quotas[entry.slice(0, colon).trim()] = Number(entry.slice(colon + 1))
  }
  return quotas
}

// A caller name: short, printable, no ':' (so 'name:token' splits at the first one, and names never look like a
// bare token's fingerprint name 'token:<hex>').
const CALLER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
// 'anonymous' is what an open deployment calls everyone; a configured caller must not inherit its tasks.
const RESERVED_NAMES = new Set(['anonymous'])

/**
 * 'name:token' or a bare token (named 'token:' + the first 16 hex digits of its SHA-256, the name this service gave
 * bare tokens before names existed, so their tasks and idempotency keys stay theirs). Problems never echo a token.
 */
function parseTokens (variable: string, value: string, problems: Map<string, string>): CallerToken[] {
  const entries: CallerToken[] = []
  value.split(',').map((entry) => entry.trim()).filter(Boolean).forEach((entry, index) => {
    const colon = entry.indexOf(':')
    const name = colon > 0 ? entry.slice(0, colon).trim() : null
    const token = colon > 0 ? entry.slice(colon + 1).trim() : entry
    if (name !== null && !CALLER_NAME.test(name)) {
      problems.set(variable, `${variable} entry ${index + 1}: the name before ':' must be 1-64 letters, digits, '.', '_' or '-' and start with a letter or digit`)
    } else if (name !== null && RESERVED_NAMES.has(name)) {
      problems.set(variable, `${variable} entry ${index + 1}: the name "${name}" is reserved`)
    } else if (token === '' || /\s/.test(token)) {
      problems.set(variable, `${variable} entry ${index + 1}: the token is empty or holds a space`)
    } else {
      entries.push({ name: name ?? tokenFingerprintName(token), token })
    }
  })
  return entries
}

/** The name of a bare token: stable, short, and says nothing usable about the token. */
export function tokenFingerprintName (token: string): string {
  return `token:${createHash('sha256').update(token).digest('hex').slice(0, 16)}`
}

// One token stands for one caller, and a name is either an operator's or a caller's: otherwise who a request
// speaks for, or what it may see, would depend on which list was read first.
function checkTokenNames (callers: CallerToken[], admins: CallerToken[], problems: Map<string, string>): void {
  const nameOf = new Map<string, string>()
  for (const { name, token } of [...callers, ...admins]) {
    const known = nameOf.get(token)
    if (known !== undefined && known !== name) problems.set('API_TOKENS', `API_TOKENS/ADMIN_TOKENS: one token is listed under two names ("${known}" and "${name}")`)
    nameOf.set(token, name)
  }
  const adminNames = new Set(admins.map(({ name }) => name))
  const both = [...new Set(callers.map(({ name }) => name))].filter((name) => adminNames.has(name))
  if (both.length > 0) problems.set('ADMIN_TOKENS', `ADMIN_TOKENS: ${both.map((name) => `"${name}"`).join(', ')} also named in API_TOKENS; a name is either an operator's or a caller's`)
}

function allowed (params: unknown): string {
  const values = (params as { allowedValues?: unknown[] } | undefined)?.allowedValues
  return values ? ` ${values.join(', ')}` : ''
}

function parseTrustProxy (value: string): boolean | number | string {
  if (value === 'true') return true
  if (value === 'false') return false
  if (/^\d+$/.test(value)) return Number(value)
  return value
}
