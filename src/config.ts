// The one environment schema and the one Config type; loadConfig() is the only reader of the environment.
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

const MIB = 1024 * 1024

export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'TCP port to listen on' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Address to listen on' }),
  DATABASE_PATH: Type.String({ minLength: 1, default: './data/s2v.db', description: 'SQLite file; its folder is created if missing' }),
  DATABASE_SYNCHRONOUS: Type.Enum(['FULL', 'NORMAL'], {
    default: 'FULL',
    description: 'SQLite synchronous mode: FULL survives power loss, NORMAL (WAL) survives process crashes only'
  }),
  PUBLIC_BASE_URL: Type.Optional(Type.String({
    pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$',
    description: 'URL at which MiniMax reaches this service (no query or fragment); default http://127.0.0.1:PORT, which only a local fake can reach'
  })),
  MINIMAX_API_KEY: Type.Optional(Type.String({ minLength: 1, description: 'MiniMax API key; without it submits answer 503' })),
  MINIMAX_BASE_URL: Type.String({ pattern: '^https?://\\S+$', default: 'https://api.minimax.io', description: 'MiniMax host (https://api.minimaxi.com in mainland China, or a fake)' }),
  MINIMAX_CREATE_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 300_000, default: 30_000, description: 'Give up waiting for a create answer after this long (the outcome is then unknown)' }),
  API_TOKENS: Type.String({ default: '', description: 'Comma-separated bearer tokens for the internal routes; empty leaves them open' }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', description: 'pino log level' }),
  SUBMIT_RATE_LIMIT: Type.Integer({ minimum: 1, default: 60, description: 'Submits per minute per caller (bearer token, else client address)' }),
  READ_RATE_LIMIT: Type.Integer({ minimum: 1, default: 1200, description: 'Lookups per minute per caller' }),
  CALLBACK_RATE_LIMIT: Type.Integer({ minimum: 1, default: 1200, description: 'Status pushes per minute per client address (challenges are never limited)' }),
  SUBMIT_BODY_LIMIT: Type.Integer({ minimum: 1024, default: 30 * MIB, description: 'Largest submit body in bytes (a 20 MB image as a base64 data URL is ~26.7 MB)' }),
  CALLBACK_BODY_LIMIT: Type.Integer({ minimum: 256, default: 64 * 1024, description: 'Largest callback body in bytes' }),
  TRUST_PROXY: Type.String({ default: 'false', description: 'Fastify trustProxy: false, true, a hop count, or comma-separated addresses/CIDRs of trusted proxies' }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, default: 10_000, description: 'How long in-flight requests may take to finish on SIGTERM/SIGINT' })
})

type Env = Static<typeof ConfigSchema>

export type Config = Omit<Env, 'PUBLIC_BASE_URL' | 'API_TOKENS' | 'TRUST_PROXY'> & {
  PUBLIC_BASE_URL: string
  API_TOKENS: string[]
  TRUST_PROXY: boolean | number | string
}

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
    if (!problems.has(name)) problems.set(name, `${name} ${error.message}${allowed(error.params)} (got ${JSON.stringify(known[name])})`)
  }
  if (problems.size > 0) throw new ConfigError(`invalid configuration: ${[...problems.values()].join('; ')}`)

  const valid = parsed as Env
  return {
    ...valid,
    PUBLIC_BASE_URL: (valid.PUBLIC_BASE_URL ?? `http://127.0.0.1:${valid.PORT}`).replace(/\/+$/, ''),
    MINIMAX_BASE_URL: valid.MINIMAX_BASE_URL.replace(/\/+$/, ''),
    API_TOKENS: valid.API_TOKENS.split(',').map((token) => token.trim()).filter(Boolean),
    TRUST_PROXY: parseTrustProxy(valid.TRUST_PROXY)
  }
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
