// Signed download links of this service: the key (configured or generated and kept), and signers for lookups and notifications.
import fp from 'fastify-plugin'
import { DownloadLinks, loadLinkSecret } from '../services/download-links.js'
import type { VideoLinkSigner } from '../services/task-view.js'

declare module 'fastify' {
  interface FastifyInstance {
    downloadLinks: {
      links: DownloadLinks
      /** For lookups and files/retrieve answers: DOWNLOAD_LINK_TTL_S. */
      forLookup: VideoLinkSigner
      /** For notification bodies, frozen when the status changes and retried for hours: DOWNLOAD_LINK_NOTIFY_TTL_S. */
      forNotification: VideoLinkSigner
    }
  }
}

export default fp(async (app) => {
  const { config } = app
  const { secret } = await loadLinkSecret(app.secretsStorage, config.DOWNLOAD_LINK_SECRET, app.log)
  const links = new DownloadLinks(secret, config.PUBLIC_BASE_URL)
  app.decorate('downloadLinks', {
    links,
    forLookup: (row) => links.sign(row.id, 'video', config.DOWNLOAD_LINK_TTL_S),
    forNotification: (row) => links.sign(row.id, 'video', config.DOWNLOAD_LINK_NOTIFY_TTL_S)
  })
}, { name: 'download-links', dependencies: ['secrets'] })
