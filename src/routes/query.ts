// GET /v1/query/video_generation: MiniMax's polling call, answered from our database (no MiniMax rate limit spent).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import { OrMiniMaxRefusal } from '../schemas/files.js'
import { MiniMaxQueryAnswer, MiniMaxQueryString } from '../schemas/tasks.js'
import { miniMaxQueryAnswer } from '../services/task-view.js'
import { callerKey } from './rate-limit-keys.js'

const queryRoute: FastifyPluginAsyncTypebox<{ rateLimit: number }> = async (app, options) => {
  app.get('/v1/query/video_generation', {
    onRequest: app.authenticate,
    config: { minimaxErrors: true, minimaxHttp200: true, rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'A task in MiniMax\'s query shape',
      description: 'MiniMax\'s polling call, answered from our database so existing polling code spends no MiniMax rate limit. ' +
        'Refusals come as HTTP 200 with a non-zero base_resp, as MiniMax answers them (1004 token, 2013 unknown task_id, 1002 rate limited).',
      querystring: MiniMaxQueryString,
      response: { 200: OrMiniMaxRefusal(MiniMaxQueryAnswer, 'The task in MiniMax\'s query shape'), ...errorResponses(500) }
    }
  }, async (request) => {
    // Another caller's task reads as unknown (findFor), so its existence is not revealed.
    const task = await app.taskStore.findFor(request, request.query.task_id)
    if (!task) throw errors.minimaxTaskNotFound(request.query.task_id)
    return miniMaxQueryAnswer(task)
  })
}

export default queryRoute
