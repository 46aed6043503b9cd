// Our own copy of finished videos (only when VIDEO_DIR is set): the archiver loop, and sendFile for serving them.
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import fp from 'fastify-plugin'
import { VideoArchiver } from '../services/video-archive.js'
import { removeStaleParts } from '../services/video-download.js'
import { assessUrl } from '../services/notifications/url-guard.js'

// A download may take a while for a large file on a slow CDN; beyond this it is retried later.
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000
// Temporary files older than this are leftovers of a crash, not a download in progress.
const STALE_PART_MS = DOWNLOAD_TIMEOUT_MS
// A claimed download's lease is the longest it can take: the link look-up (PROVIDER_REQUEST_TIMEOUT_MS), the download
// (DOWNLOAD_TIMEOUT_MS), and this for the writes around them (the link, the archive's record) and clocks that differ
// between replicas by a little; only then does another replica take over a download that never reported back.
const ARCHIVE_LEASE_MARGIN_MS = 60_000

export default fp(async (app) => {
  const { config } = app
  if (!config.VIDEO_DIR) return
  const dir = resolve(config.VIDEO_DIR)
  mkdirSync(dir, { recursive: true })
  const removed = removeStaleParts(dir, STALE_PART_MS)
  if (removed > 0) app.log.info({ removed }, 'removed unfinished video downloads')
  // Loaded only when archiving is on (the dashboard's files load their own copy on first use).
  const { default: fastifyStatic } = await import('@fastify/static')
  await app.register(fastifyStatic, { root: dir, serve: false })
  const archiver = new VideoArchiver({
    store: app.taskStore,
    reconciler: app.reconciler,
    dir,
    maxBytes: config.VIDEO_MAX_BYTES,
    log: app.log,
    tickMs: config.RECONCILE_TICK_MS,
    downloadTimeoutMs: DOWNLOAD_TIMEOUT_MS,
    leaseMs: config.PROVIDER_REQUEST_TIMEOUT_MS + DOWNLOAD_TIMEOUT_MS + ARCHIVE_LEASE_MARGIN_MS,
    // Provider links are fetched like notify URLs: https only, public addresses only, every redirect checked.
    guard: async (url) => await assessUrl(url, { allowPrivate: config.VIDEO_ALLOW_PRIVATE, name: 'the video URL', httpsOnly: true, setting: 'VIDEO_ALLOW_PRIVATE' })
  })
  app.addHook('onReady', async () => archiver.start())
  app.addHook('preClose', async () => archiver.stop())
}, { name: 'archive', dependencies: ['database', 'reconciler'] })
