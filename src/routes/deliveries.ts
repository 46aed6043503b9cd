// The notifications API (each caller its own tasks', admins everyone's): deliveries and their attempts, the dead-letter list, replays, the signing secret.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { AppError, errors } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import { BulkRetryAnswer, BulkRetryBody, Delivery, DeliveryListQuery, DeliveryPage, DeliveryParams, SigningSecretAnswer } from '../schemas/deliveries.js'
import type { CallerSecret } from '../services/notifications/caller-secrets.js'
import { deliveryView } from '../services/notifications/delivery-view.js'
import type { DeliveryListRow } from '../db/deliveries-repository.js'
import { pageCursor } from './cursor.js'
import { callerKey } from './rate-limit-keys.js'

export type DeliveriesRouteOptions = { rateLimit: number }

const deliveryCursor = pageCursor('delivery')

const deliveriesRoutes: FastifyPluginAsyncTypebox<DeliveriesRouteOptions> = async (app, options) => {
  const config = { rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } }
  const { outbox, callerSecrets } = app.notifications
  const view = async (row: DeliveryListRow) => deliveryView(row, await outbox.storage.attemptsOf(row.seq))

  app.get('/v1/deliveries', {
    onRequest: app.authenticate,
    config,
    schema: {
      summary: 'Notification deliveries, newest first',
      description: 'The deliveries of the caller\'s tasks (an admin\'s: everyone\'s). state=failed is the dead-letter list: deliveries that will not be tried again unless replayed. Every attempt is included.',
      querystring: DeliveryListQuery,
      response: { 200: DeliveryPage, ...errorResponses(400, 401, 404, 429, 500) }
    }
  }, async (request) => {
    const { state, task, limit, cursor } = request.query
    let taskSeq: number | undefined
    if (task !== undefined) {
      const found = await app.taskStore.findFor(request, task)
      if (!found) throw errors.notFound(`task ${task}`)
      taskSeq = found.seq
    }
    const rows = await outbox.listFor(request, { state, taskSeq, limit: limit + 1, beforeSeq: cursor === undefined ? undefined : deliveryCursor.decode(cursor) })
    const page = rows.slice(0, limit)
    return { items: await Promise.all(page.map(view)), next_cursor: rows.length > limit ? deliveryCursor.encode(page.at(-1)!.seq) : null }
  })

  app.get('/v1/deliveries/:id', {
    onRequest: app.authenticate,
    config,
    schema: {
      summary: 'One delivery with every attempt',
      description: 'Its state, its schedule and every attempt\'s status code, latency and error.',
      params: DeliveryParams,
      response: { 200: Delivery, ...errorResponses(400, 401, 404, 429, 500) }
    }
  }, async (request) => {
    const row = await outbox.findFor(request, request.params.id)
    if (!row) throw errors.notFound(`delivery ${request.params.id}`)
    return view(row)
  })

  app.post('/v1/deliveries/:id/retry', {
    onRequest: app.authenticate,
    config,
    schema: {
      summary: 'Send a delivery again',
      description: 'A failed (or delivered) delivery becomes pending with a fresh retry schedule and the same webhook-id. ' +
        'Refused with 409 while it is pending (delivery_pending), or when a later status of the task was already delivered to the same URL ' +
        '(delivery_superseded: sending it would go back in time). Replaying to a URL that answered 410 allows that URL again.',
      params: DeliveryParams,
      response: { 202: Delivery, ...errorResponses(400, 401, 404, 409, 429, 500) }
    }
  }, async (request, reply) => {
    const row = await outbox.retry(request, request.params.id)
    request.log.info({ delivery: row.id }, 'delivery replayed')
    return reply.code(202).send(await view(row))
  })

  app.post('/v1/deliveries/retry', {
    onRequest: app.authenticate,
    config,
    schema: {
      summary: 'Send every failed delivery of a time range again',
      description: 'Failed deliveries of the caller\'s tasks (an admin\'s: everyone\'s) created in [since, until) become pending again, oldest first, each with a fresh schedule and its own webhook-id; ' +
        'those a later delivered status superseded are skipped.',
      body: BulkRetryBody,
      response: { 202: BulkRetryAnswer, ...errorResponses(400, 401, 429, 500) }
    }
  }, async (request, reply) => {
    const since = new Date(request.body.since)
    const until = request.body.until === undefined ? new Date() : new Date(request.body.until)
    if (until <= since) throw new AppError(400, 'invalid_range', 'until must be after since')
    const result = await outbox.retryRange(request, since.toISOString(), until.toISOString())
    request.log.info({ ...result, since: since.toISOString(), until: until.toISOString() }, 'failed deliveries replayed')
    return reply.code(202).send(result)
  })

  // An open deployment would hand a secret to anyone who can reach it.
  const open = app.config.API_TOKENS.length === 0 && app.config.ADMIN_TOKENS.length === 0
  const secretAnswer = (request: FastifyRequest, keys: CallerSecret[]) => {
    const answer: SigningSecretAnswer = { caller: request.caller, secrets: keys.map(({ secret }) => secret), keys }
    if (request.isAdmin) answer.operator = { source: app.notifications.secrets.source, secrets: app.notifications.secrets.secrets }
    return answer
  }

  app.get('/v1/notifications/secret', {
    onRequest: app.authenticate,
    config,
    schema: {
      summary: 'The secrets your notifications are signed with',
      description: 'For consumers of your tasks\' notify_url to verify webhook-signature: your own secrets (generated on first use), which no other ' +
        'caller can read. Admins also get the operator\'s (NOTIFY_URL\'s; NOTIFY_SECRET\'s sign every message). An open deployment answers 403 admin_token_required.',
      response: { 200: SigningSecretAnswer, ...errorResponses(401, 403, 429, 500) }
    }
  }, async (request) => {
    if (open) throw errors.adminTokenRequired()
    return secretAnswer(request, await callerSecrets.of(request.caller))
  })

  app.post('/v1/notifications/secret/rotate', {
    onRequest: app.authenticate,
    config,
    schema: {
      summary: 'Rotate your signing secret',
      description: 'A new current secret signs your messages from now on; the one it replaces keeps signing beside it for 24 hours, so consumers can switch ' +
        'without a gap. Answers the secrets now in force. Takes no body.',
      response: { 200: SigningSecretAnswer, ...errorResponses(401, 403, 429, 500) }
    }
  }, async (request) => {
    if (open) throw errors.adminTokenRequired()
    const keys = await callerSecrets.rotate(request.caller)
    request.log.info({ caller: request.caller }, 'signing secret rotated')
    return secretAnswer(request, keys)
  })
}

export default deliveriesRoutes
