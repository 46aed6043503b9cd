// The dashboard's static files: CSP and security headers, caching of hashed assets, /ui → /ui/, 503 when not built.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { contentSecurityPolicy } from '../../src/plugins/ui.js'
import { tempDir, testConfig } from '../helper.js'

async function withUi (t: Parameters<typeof tempDir>[0], files: Record<string, string>) {
  const root = tempDir(t)
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(root, name, '..'), { recursive: true })
    writeFileSync(join(root, name), text)
  }
  const app = await buildApp(testConfig(t, { MINIMAX_BASE_URL: 'http://127.0.0.1:4010' }), { uiRoot: root })
  t.teardown(() => app.close())
  return app
}

t.test('the page: revalidated, with a strict CSP and no framing', async (t) => {
  const app = await withUi(t, { 'index.html': '<!doctype html><title>x</title>', 'assets/main-ABCD1234.js': 'export {}' })
  const page = await app.inject({ url: '/ui/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.headers['cache-control'], 'no-cache')
  const csp = String(page.headers['content-security-policy'])
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) {
    t.ok(csp.split('; ').includes(directive), directive)
  }
  t.match(csp, /media-src 'self' blob: https: http:\/\/127\.0\.0\.1:4010/, 'videos from us, https links, and the configured provider host')
  t.notMatch(csp, /unsafe/)
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  t.equal(page.headers['referrer-policy'], 'no-referrer')
  t.ok(page.headers.etag, 'an ETag, so revalidation is a 304')
  const again = await app.inject({ url: '/ui/', headers: { 'if-none-match': String(page.headers.etag) } })
  t.equal(again.statusCode, 304)
})

t.test('hashed assets are cached for a year; /ui redirects to /ui/; an unknown file is a 404', async (t) => {
  const app = await withUi(t, { 'index.html': 'x', 'assets/main-ABCD1234.js': 'export {}', 'assets/plain.js': 'export {}' })
  const asset = await app.inject({ url: '/ui/assets/main-ABCD1234.js' })
  t.equal(asset.statusCode, 200)
  t.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable')
  t.match(asset.headers['content-type'], /javascript/)
  t.equal((await app.inject({ url: '/ui/assets/plain.js' })).headers['cache-control'], 'no-cache', 'a name without a hash is revalidated')
  const bare = await app.inject({ url: '/ui' })
  t.equal(bare.statusCode, 301)
  t.equal(new URL(String(bare.headers.location), 'http://service.example/ui').pathname, '/ui/', 'a relative link, so a proxy prefix survives')
  const missing = await app.inject({ url: '/ui/assets/nope-ABCD1234.js' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'not_found')
})

t.test('a service whose dashboard was not built answers 503 ui_not_built there, and the API still works', async (t) => {
  const app = await withUi(t, {})
  const res = await app.inject({ url: '/ui/' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'ui_not_built')
  t.equal((await app.inject({ url: '/ui' })).statusCode, 503)
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200)
})

t.test('the policy lists each extra origin once', async (t) => {
  t.match(contentSecurityPolicy(['http://127.0.0.1:1']), /img-src 'self' blob: https: http:\/\/127\.0\.0\.1:1 data:/)
})
