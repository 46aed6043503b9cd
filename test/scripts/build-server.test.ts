// The bundled service (scripts/build-server.ts → dist/server.js): TypeBox inside, and every module still finds the files
// next to where tsc would have put it (migrations, package.json, the dashboard).
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, getJson, startBuiltServer, tempDir } from '../helper.js'

const ROOT = join(import.meta.dirname, '..', '..')
const SERVER = join(ROOT, 'dist', 'server.js')
const skip = existsSync(SERVER) ? false : 'run `npm run build` first (npm test does)'

t.test('dist/server.js is one bundle: TypeBox is in it, the other packages are loaded from node_modules', { skip }, async (t) => {
  const bundle = readFileSync(SERVER, 'utf8')
  t.notMatch(bundle, /from ["']typebox(\/[\w/]+)?["']/, 'no import of typebox')
  t.notMatch(bundle, /from ["']\.\.?\//, 'no import of another file of ours')
  t.match(bundle, /from ["']fastify["']/, 'fastify stays a package')
  t.notMatch(bundle, /^import [^;]*from ["']pg(\/[\w/]+)?["']/m, 'pg is not imported at start (src/db/postgres/driver.ts): a server on SQLite never loads it')
})

t.test('the bundled server migrates, reads its version and serves the dashboard and the reference', { skip }, async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  await startBuiltServer(t, SERVER, { PORT: String(port), HOST: '127.0.0.1', DATABASE_PATH: join(dir, 's2v.db') })
  const base = `http://127.0.0.1:${port}`
  t.equal((await getJson(`${base}/readyz`)).status, 200, 'migrated a fresh database from migrations/')
  const document = await getJson(`${base}/openapi.json`)
  t.equal(document.body.info.version, version, 'the version is read from package.json')
  const ui = await fetch(`${base}/ui/`)
  t.equal(ui.status, existsSync(join(ROOT, 'dist', 'ui', 'index.html')) ? 200 : 503, 'the dashboard is found in dist/ui')
  const docs = await fetch(`${base}/docs/`)
  t.equal(docs.status, 200, 'the interactive reference is served')
  t.match(await docs.text(), /swagger/i)
})
