// Bench baseline, run as a child process: a bare Fastify 5 app with the service's logger options, echoing a challenge on one POST route.
// Plain JavaScript importing the compiled logger, so it runs exactly like the service (node on built code, no TypeScript loader).
import Fastify from 'fastify'
import { loggerOptions } from '../dist/logger.js'

// The same route shape, body and answer as the service's challenge, with plain JSON schemas as any Fastify app would have.
const app = Fastify({ logger: loggerOptions(process.env.LOG_LEVEL ?? 'warn') })

app.post('/get_callback/:token', {
  schema: {
    body: { type: 'object', properties: { challenge: { type: 'string' } }, required: ['challenge'] },
    response: { 200: { type: 'object', properties: { challenge: { type: 'string' } }, required: ['challenge'] } }
  }
}, async (request) => ({ challenge: request.body.challenge }))

process.once('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
