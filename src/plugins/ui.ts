// The web dashboard at /ui/: the built front end (npm run build → dist/ui) as static files, under a strict CSP.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import fp from 'fastify-plugin'
import Fastify from 'fastify'
import { errors } from '../errors.js'
import { forwardTo, lazyApp } from '../lib/lazy-app.js'

export type UiPluginOptions = {
  /** The built front end: index.html and assets/ with content-hashed names. */
  root: string
  /** Origins besides our own that may serve videos and images to the page (the providers' download hosts). */
  mediaOrigins: string[]
}

// Hashed file names change whenever their content does, so a browser may keep them for a year without asking.
const HASHED_ASSET = /\/assets\/[^/]+-[A-Z0-9]{8,}\.(js|css|map|svg|woff2)$/i
const IMMUTABLE = 'public, max-age=31536000, immutable'

/** The page's Content-Security-Policy: our own scripts and styles only, no inline code, no framing. */
export function contentSecurityPolicy (mediaOrigins: string[]): string {
  const media = ["'self'", 'blob:', 'https:', ...mediaOrigins].join(' ')
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    // Reference images are any https URL a caller gave; uploads are previewed from data: URLs before the submit.
    `img-src ${media} data:`,
    // The player reads our archived copy, a short-lived signed link of ours, or the provider's signed link.
    `media-src ${media}`,
    "connect-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'"
  ].join('; ')
}

export default fp<UiPluginOptions>(async (app, options) => {
  const csp = contentSecurityPolicy(options.mediaOrigins)
  const securityHeaders = (res: { setHeader: (name: string, value: string) => unknown }) => {
    res.setHeader('content-security-policy', csp)
    res.setHeader('x-content-type-options', 'nosniff')
    res.setHeader('referrer-policy', 'no-referrer')
    res.setHeader('cross-origin-opener-policy', 'same-origin')
  }

  if (!existsSync(join(options.root, 'index.html'))) {
    app.log.warn({ root: options.root }, 'the dashboard is not built (npm run build): /ui/ answers 503')
    app.get('/ui/*', { schema: { hide: true } }, async () => { throw errors.uiNotBuilt() })
    app.get('/ui', { schema: { hide: true } }, async () => { throw errors.uiNotBuilt() })
    return
  }

  // The files are served by @fastify/static in an app of its own, built on the first /ui/ request: a process whose
  // dashboard nobody opens never loads it (~40 ms and ~1.5 MB of start-up).
  const files = lazyApp(async () => {
    const { default: fastifyStatic } = await import('@fastify/static')
    const inner = Fastify()
    await inner.register(fastifyStatic, {
      root: options.root,
      prefix: '/ui/',
      index: ['index.html'],
      cacheControl: false, // set per file below
      etag: true,
      lastModified: true,
      setHeaders (res, path) {
        securityHeaders(res)
        // The page itself is always revalidated, so a new build's asset names are seen at once.
        res.setHeader('cache-control', HASHED_ASSET.test(path) ? IMMUTABLE : 'no-cache')
      }
    })
    await inner.ready()
    return inner
  })
  app.get('/ui/*', { schema: { hide: true } }, forwardTo(files))
  // Relative, so the page's relative asset links also work behind a proxy that mounts the service under a prefix.
  app.get('/ui', { schema: { hide: true } }, async (_request, reply) => reply.redirect('ui/', 301))
}, { name: 'ui' })
