// GET /v1/files/retrieve (MiniMax's file look-up, answered with our signed link) and GET /v1/files/download/:id (the signed link).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import { DownloadParams, DownloadQuery, MiniMaxFileAnswer, MiniMaxFileQuery, OrMiniMaxRefusal } from '../schemas/files.js'
import { hasVideo } from '../services/task-view.js'
import { callerKey } from './rate-limit-keys.js'
import { sendVideo } from './video-reply.js'

const filesRoutes: FastifyPluginAsyncTypebox<{ rateLimit: number }> = async (app, options) => {
  const store = app.taskStore

  app.get('/v1/files/retrieve', {
    onRequest: app.authenticate,
    config: { minimaxErrors: true, minimaxHttp200: true, rateLimit: { max: options.rateLimit, timeWindow: 60_000, keyGenerator: callerKey } },
    schema: {
      summary: 'A finished task\'s video file in MiniMax\'s shape',
      description: 'MiniMax\'s third polling step (query → retrieve → download), so its clients work unchanged: file.download_url is a signed link of ' +
        'this service that needs no bearer header. Refusals come as HTTP 200 with a non-zero base_resp, as MiniMax answers them (1004 token, 2013 unknown file_id).',
      querystring: MiniMaxFileQuery,
      response: { 200: OrMiniMaxRefusal(MiniMaxFileAnswer, 'The file'), ...errorResponses(500) }
    }
  }, async (request) => {
    const { file_id: fileId } = request.query
    // Modellix tasks have no file_id: the query answer gives our task id in its place.
    const task = await store.findByFileIdFor(request, fileId)
    if (!task || !hasVideo(task)) throw errors.minimaxFileNotFound(fileId)
    const link = app.downloadLinks.forLookup(task)
    return {
      file: {
        file_id: fileId,
        bytes: (task.archive_state === 'stored' ? task.archive_bytes : null) ?? task.video_bytes ?? 0,
        created_at: Math.floor(Date.parse(task.updated_at) / 1000),
        filename: `${task.task_id ?? task.id}.mp4`,
        purpose: 'video_generation' as const,
        download_url: link.url
      },
      base_resp: { status_code: 0, status_msg: 'success' }
    }
  })

  app.get('/v1/files/download/:id', {
    // No bearer header: the signature is the authorisation, as with MiniMax's own download links.
    config: { rateLimit: { max: options.rateLimit, timeWindow: 60_000 } },
    schema: {
      summary: 'A signed download link of this service',
      description: 'The video of one task, for <video src> and MiniMax clients: our archived copy as video/mp4 with Range (206, 416), else a 302 to a fresh ' +
        'provider link (fetched now when none is known). Needs no bearer header; refused with 403 when expired (download_link_expired) or altered or ' +
        'for another task (download_link_invalid). Get one from download_url of a lookup, files/retrieve or a notification.',
      tags: ['tasks'],
      params: DownloadParams,
      querystring: DownloadQuery,
      response: { ...errorResponses(400, 403, 404, 409, 429, 500, 502) }
    }
  }, async (request, reply) => {
    const { id } = request.params
    // The signature first: without a valid link nobody learns whether a task exists.
    const check = app.downloadLinks.links.check(id, 'video', request.query.expires, request.query.signature)
    if (check === 'invalid') throw errors.downloadLinkInvalid()
    if (check === 'expired') throw errors.downloadLinkExpired()
    const task = await store.queries.byId(id)
    // Signed for a task that retention has purged since.
    if (!task) throw errors.notFound(`task ${id}`)
    return sendVideo(app, task, reply)
  })
}

export default filesRoutes
