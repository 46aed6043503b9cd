// The domain services and the MiniMax client they use, built once from the configuration.
import fp from 'fastify-plugin'
import { MiniMaxClient } from '../providers/minimax.js'
import { CallbackService } from '../services/callback.js'
import { SubmitService } from '../services/submit.js'

declare module 'fastify' {
  interface FastifyInstance {
    submitService: SubmitService
    callbackService: CallbackService
  }
}

export type ServicesPluginOptions = {
  minimax: { apiKey: string | undefined, baseUrl: string, createTimeoutMs: number }
  publicBaseUrl: string
}

export default fp<ServicesPluginOptions>(async (app, { minimax, publicBaseUrl }) => {
  if (!minimax.apiKey) app.log.warn('MINIMAX_API_KEY is not set: submits will answer 503 until it is')
  if (/^https?:\/\/(localhost|127\.|\[::1\]|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(publicBaseUrl)) {
    app.log.warn({ publicBaseUrl }, 'PUBLIC_BASE_URL is a loopback or private address: the real MiniMax cannot reach it (fine with a local fake)')
  }
  const client = minimax.apiKey
    ? new MiniMaxClient({ apiKey: minimax.apiKey, baseUrl: minimax.baseUrl, createTimeoutMs: minimax.createTimeoutMs })
    : null
  app.decorate('submitService', new SubmitService({ store: app.taskStore, client, publicBaseUrl, log: app.log }))
  app.decorate('callbackService', new CallbackService(app.taskStore, app.log))
}, { name: 'services', dependencies: ['database'] })
