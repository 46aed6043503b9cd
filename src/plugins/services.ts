// The domain services that answer requests: submitting and MiniMax's callbacks.
import fp from 'fastify-plugin'
import { CallbackService } from '../services/callback.js'
import { checkNotifyUrl } from '../services/notifications/url-guard.js'
import { SubmitService } from '../services/submit.js'

declare module 'fastify' {
  interface FastifyInstance {
    submitService: SubmitService
    callbackService: CallbackService
  }
}

export default fp(async (app) => {
  app.decorate('submitService', new SubmitService({
    store: app.taskStore,
    providers: app.providers,
    defaultProvider: app.config.DEFAULT_PROVIDER,
    publicBaseUrl: app.config.PUBLIC_BASE_URL,
    log: app.log,
    // SSRF guard on notify_url (notifications): refused with 400 notify_url_not_allowed before the task exists.
    checkNotifyUrl: (url) => checkNotifyUrl(url, { allowPrivate: app.config.NOTIFY_ALLOW_PRIVATE })
  }))
  app.decorate('callbackService', new CallbackService(app.taskStore, app.log))
}, { name: 'services', dependencies: ['database', 'providers'] })
