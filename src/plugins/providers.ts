// The provider clients that have a key configured, keyed by name; each reports its calls to the task events.
import fp from 'fastify-plugin'
import { MiniMaxClient } from '../providers/minimax.js'
import { ModellixClient } from '../providers/modellix.js'
import type { ProviderCall, ProviderName, VideoProvider } from '../providers/provider.js'

declare module 'fastify' {
  interface FastifyInstance {
    providers: ReadonlyMap<ProviderName, VideoProvider>
  }
}

const LOOPBACK_OR_PRIVATE = /^https?:\/\/(localhost|127\.|\[::1\]|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/

export default fp(async (app) => {
  const { config } = app
  const onCall = (call: ProviderCall) => app.taskStore.events.emit('providerCall', call)
  const providers = new Map<ProviderName, VideoProvider>()
  if (config.MINIMAX_API_KEY) {
    providers.set('minimax', new MiniMaxClient({
      apiKey: config.MINIMAX_API_KEY,
      baseUrl: config.MINIMAX_BASE_URL,
      createTimeoutMs: config.MINIMAX_CREATE_TIMEOUT_MS,
      requestTimeoutMs: config.PROVIDER_REQUEST_TIMEOUT_MS,
      onCall
    }))
  }
  if (config.MODELLIX_API_KEY) {
    providers.set('modellix', new ModellixClient({
      apiKey: config.MODELLIX_API_KEY,
      baseUrl: config.MODELLIX_BASE_URL,
      submitPath: config.MODELLIX_SUBMIT_PATH,
      timeoutMs: config.PROVIDER_REQUEST_TIMEOUT_MS,
      onCall
    }))
  }
  if (!providers.has(config.DEFAULT_PROVIDER)) {
    app.log.warn(`${config.DEFAULT_PROVIDER.toUpperCase()}_API_KEY is not set: submits to the default provider will answer 503 until it is`)
  }
  if (LOOPBACK_OR_PRIVATE.test(config.PUBLIC_BASE_URL)) {
    app.log.warn({ publicBaseUrl: config.PUBLIC_BASE_URL }, 'PUBLIC_BASE_URL is a loopback or private address: the real MiniMax cannot reach it (fine with a local fake)')
  }
  app.decorate('providers', providers)
}, { name: 'providers', dependencies: ['database'] })
