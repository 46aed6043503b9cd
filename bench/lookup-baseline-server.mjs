// Bench baseline, run as a child process: bare Fastify serving the service's own lookup answers from memory.
// The same bytes through the same response schema, so the ratio to it is what auth, queries and hooks cost, not JSON size.
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import { loggerOptions } from '../dist/logger.js'
import { TaskDetail, TaskParams } from '../dist/schemas/tasks.js'

// [{ id, text }]: answers the service gave (bench/lookup-sample.ts), parsed once so each request serialises like the service's.
const answers = new Map(JSON.parse(readFileSync(process.env.LOOKUP_SAMPLE, 'utf8')).map(({ id, text }) => [id, JSON.parse(text)]))

const app = Fastify({ logger: loggerOptions(process.env.LOG_LEVEL ?? 'info') })

app.get('/v1/tasks/:id', { schema: { params: TaskParams, response: { 200: TaskDetail } } }, async (request, reply) => {
  const answer = answers.get(request.params.id)
  if (answer === undefined) return reply.code(404).send({ error: 'not in the sample' })
  return answer
})

process.once('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
