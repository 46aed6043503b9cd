// GET /v1/query/video_generation: MiniMax's polling call, answered from our database (no MiniMax rate limit spent).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AppError } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import { MiniMaxQueryAnswer, MiniMaxQueryString } from '../schemas/tasks.js'
import { miniMaxQueryAnswer } from '../services/task-view.js'
import { callerKey } from './rate-limit-keys.js'

const queryRoute: FastifyPluginAsyncTypebox<{ rateLimit: number }> = async (app, options) => {
  app.get('/v1/query/video_generation', {
    onRequest: app.authenticate,
    config: { minimaxErrors: true, rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'A task in MiniMax\'s query shape',
      description: 'MiniMax\'s polling call, answered from our database so existing polling code spends no MiniMax rate limit. ' +
        'Errors carry base_resp (404: status_code 2013).',
      querystring: MiniMaxQueryString,
      response: { 200: MiniMaxQueryAnswer, ...errorResponses(400, 401, 404, 429, 500) }
    }
  }, async (request) => {
    const task = app.taskStore.findFor(request, request.query.task_id)
    if (!task) {
      throw new AppError(404, 'not_found', `task ${request.query.task_id} not found`, {
        task_id: request.query.task_id, base_resp: { status_code: 2013, status_msg: 'invalid params, task not found' }
      })
    }
    return miniMaxQueryAnswer(task)
  })
}

export default queryRoute
