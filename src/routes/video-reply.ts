// How a video is answered, for GET /v1/tasks/:id/video and the signed links: our copy, else a fresh provider link.
import { existsSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { TaskRow } from '../db/tasks-repository.js'
import { errors } from '../errors.js'

export async function sendVideo (app: FastifyInstance, task: TaskRow, reply: FastifyReply): Promise<FastifyReply> {
  if (task.archive_state === 'stored' && task.archive_path && app.hasReplyDecorator('sendFile') && existsSync(task.archive_path)) {
    // @fastify/static answers Range requests with 206 (and 416 for a range outside the file). A caller's video, not a
    // public asset: browsers may keep it, shared caches (proxies, CDNs) must not.
    return reply.type('video/mp4').header('cache-control', 'private').sendFile(basename(task.archive_path), dirname(task.archive_path), { cacheControl: false })
  }
  if (task.status !== 'success') throw errors.videoNotReady(task.id, task.status)
  // The link is fetched after the status change: a link followed at once may find none yet, and gets one now.
  task = await app.reconciler.videoLinkNow(task)
  if (!task.video_url || !task.video_expires_at || Date.parse(task.video_expires_at) <= Date.now()) throw errors.videoLinkUnavailable(task.id)
  // The Location is a signed, expiring link: nobody should keep this answer.
  return reply.header('cache-control', 'private, no-store').redirect(task.video_url, 302)
}
