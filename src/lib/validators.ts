// Request validation: bodies are taken exactly as sent (no type coercion); params, query and headers still coerce.
import { AjvCompiler, type BuildCompilerFromPool } from '@fastify/ajv-compiler'

const fromPool = AjvCompiler()

/**
 * A validator factory for Fastify's schemaController. Query strings, params and headers arrive as text, so they keep
 * Fastify's coercion (`?limit=20` is a number); a JSON body already has types, and coercing them would turn
 * `"prompt": 123` into "123" and `"image": "x"` into ["x"] behind the caller's back, so bodies are validated as sent.
 */
export const buildValidator: BuildCompilerFromPool = (externalSchemas, options = {}) => {
  const coercing = fromPool(externalSchemas, options)
  const exact = fromPool(externalSchemas, { ...options, mode: undefined as never, customOptions: { ...(options.customOptions as object), coerceTypes: false } })
  return (route) => (route.httpPart === 'body' ? exact : coercing)(route)
}
