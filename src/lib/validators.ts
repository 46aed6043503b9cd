// Request validation: bodies are taken exactly as sent (no type coercion); params, query and headers still coerce.
// Each validator is compiled on its first request, not at start-up.
import { AjvCompiler, type BuildCompilerFromPool } from '@fastify/ajv-compiler'

const fromPool = AjvCompiler()

type Validate = ReturnType<ReturnType<BuildCompilerFromPool>>

/**
 * A validator factory for Fastify's schemaController. Query strings, params and headers arrive as text, so they keep
 * Fastify's coercion (`?limit=20` is a number); a JSON body already has types, and coercing them would turn
 * `"prompt": 123` into "123" and `"image": "x"` into ["x"] behind the caller's back, so bodies are validated as sent.
 */
export const buildEagerValidator: BuildCompilerFromPool = (externalSchemas, options = {}) => {
  const coercing = fromPool(externalSchemas, options)
  const exact = fromPool(externalSchemas, { ...options, mode: undefined as never, customOptions: { ...(options.customOptions as object), coerceTypes: false } })
  return (route) => (route.httpPart === 'body' ? exact : coercing)(route)
}

/**
 * buildEagerValidator, compiled on first use: Fastify compiles every schema of every route (HEAD twins included)
 * before the app is ready, which was a third of the start-up time, mostly for routes a given process never serves.
 * The schemas are static, so a schema that cannot compile is caught by the tests (test/lib/validators.test.ts
 * compiles every route's), not first seen in production.
 */
export const buildValidator: BuildCompilerFromPool = (externalSchemas, options) => {
  const compile = buildEagerValidator(externalSchemas, options)
  return (route) => compileOnFirstCall(() => compile(route))
}

function compileOnFirstCall (compile: () => Validate): Validate {
  let validate: Validate | undefined
  const lazy = ((data: unknown) => (validate ??= compile())(data)) as Validate
  // Fastify reads the errors off the function it was given, after each call: those of the compiled one (a getter, so
  // a request writes nothing on this function).
  Object.defineProperty(lazy, 'errors', { get: () => validate?.errors ?? null })
  return lazy
}
