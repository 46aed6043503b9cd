// GET /healthz (the process answers) and GET /readyz (the database answers too).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HealthAnswer } from '../schemas/health.js'

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', { schema: { summary: 'Liveness', description: 'Answers while the process runs.', response: { 200: HealthAnswer } } }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', { schema: { summary: 'Readiness: the database is usable', description: 'ok when the database answers a query, else 503 unavailable.', response: { 200: HealthAnswer, 503: HealthAnswer } } }, async (request, reply) => {
    try {
      await app.pingDatabase()
      return { status: 'ok' as const }
    } catch (err) {
      request.log.error({ err }, 'readiness probe failed')
      return reply.code(503).send({ status: 'unavailable' as const, reason: 'database unavailable' })
    }
  })
}

export default healthRoutes
