// The METRICS_PORT server: GET /metrics of one app's registry on a port of its own, started and stopped by server.ts.
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify'
import type { Registry } from 'prom-client'
import { errorBody } from './errors.js'
import { metricsRouteSchema, sendMetrics } from './plugins/metrics.js'

/**
 * A server that only answers GET /metrics, without a token: METRICS_PORT is meant for a private network that only
 * the scraper reaches. Scrapes are not logged (one every few seconds would drown the request logs).
 */
export async function buildMetricsServer (registry: Registry, logger: FastifyBaseLogger) {
  const server = Fastify({ loggerInstance: logger.child({ server: 'metrics' }), logController: new LogController({ disableRequestLogging: true }) })
  server.get('/metrics', { schema: { ...metricsRouteSchema, response: { 200: metricsRouteSchema.response[200] } } }, async (_request, reply) => sendMetrics(registry, reply))
  server.setNotFoundHandler((request, reply) => {
    reply.code(404).send(errorBody(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}; this port only serves GET /metrics`))
  })
  server.setErrorHandler((err, request, reply) => {
    request.log.error({ err }, 'metrics scrape failed')
    reply.code(500).send(errorBody(500, 'internal_error', 'could not collect the metrics'))
  })
  await server.ready()
  return server
}
