// Response serialisers (fast-json-stringify, as Fastify's default), compiled on first use and shared between routes.
import SerializerSelector from '@fastify/fast-json-stringify-compiler'

type SerializerFactory = SerializerSelector.SerializerFactory
type Serialize = SerializerSelector.Serializer

const fromPool = SerializerSelector()

/**
 * A serializer factory for Fastify's schemaController. Fastify builds a serializer for every status of every route
 * (HEAD twins included) before the app is ready: most are never used by a given process, and one schema (the error
 * shape) is declared by every route for several statuses. So each schema object is compiled once, on the first answer
 * that needs it. test/lib/validators.test.ts compiles every route's, so a schema that cannot compile fails the tests.
 */
export const buildSerializer: SerializerFactory = (externalSchemas, options) => {
  const compile = fromPool(externalSchemas, options)
  const compiled = new WeakMap<object, Serialize>()
  return (route) => {
    let serialize: Serialize | undefined
    return (data: unknown) => {
      serialize ??= compiled.get(route.schema as object)
      if (!serialize) {
        serialize = compile(route)
        compiled.set(route.schema as object, serialize)
      }
      return serialize(data)
    }
  }
}
