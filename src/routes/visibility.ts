// Which tasks a caller may see on the MiniMax-compatible routes: its own, unless the routes are open (no API_TOKENS).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TaskRow } from '../db/tasks-repository.js'

export function visibleTo (app: FastifyInstance, request: FastifyRequest, task: TaskRow | undefined): task is TaskRow {
  if (!task) return false
  return app.config.API_TOKENS.length === 0 || task.caller === request.caller
}
