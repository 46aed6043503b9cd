// The JSON body parser for every route: an empty body is no body, as common HTTP clients send it on body-less POSTs.
import fp from 'fastify-plugin'

export default fp(async (app) => {
  // Fastify's own parser, with its defaults: a "__proto__" or "constructor.prototype" key is a 400, never a polluted object.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  // fetch, axios and curl --json send `content-type: application/json` with an empty body on POSTs that take none
  // (refresh, retry, cancel, rotate); that is "no body", not a 400. A route that needs a body still refuses it: its
  // schema requires an object.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') return done(null, undefined)
    parseJson(request, body as string, done)
  })
}, { name: 'json-body' })
