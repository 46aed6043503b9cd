// `npm run build` (after tsc): bundles the service (src/server.ts and all it imports, TypeBox included) into dist/server.js.
// Node then reads one file of ours instead of ~780 ES modules (TypeBox alone is ~680 small files): start-up CPU and
// idle memory both drop (see README, "Footprint"). Every other dependency stays a package in node_modules, loaded as
// before: native addons, packages that read files next to their own code (@fastify/swagger-ui's assets), and CJS.
import { readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type Plugin } from 'esbuild'
import { writeAllIfChanged } from './write-if-changed.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SRC = join(ROOT, 'src')
const DIST = join(ROOT, 'dist')
// Bundled in: ESM split into hundreds of files, tree-shaken to what the schemas and config use.
const BUNDLED_PACKAGES = new Set(['typebox'])

const { dependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
// A package named here is external with all its subpaths (fastify/..., pino/...).
const external = Object.keys(dependencies).filter((name) => !BUNDLED_PACKAGES.has(name))

/**
 * A module finds files next to its compiled self (migrations/ from dist/db, package.json from dist/plugins, dist/ui from
 * dist/app.js). In the bundle every module would see dist/server.js instead, so each one's import.meta.url and
 * import.meta.dirname are rewritten to where tsc puts that module: the same paths, bundled or not.
 */
const ownLocation: Plugin = {
  name: 'own-location',
  setup (esbuild) {
    esbuild.onLoad({ filter: /\.ts$/ }, ({ path }) => {
      if (!path.startsWith(SRC)) return undefined
      const compiled = relative(SRC, path).replace(/\.ts$/, '.js').split('\\').join('/')
      const folder = dirname(compiled)
      const contents = readFileSync(path, 'utf8')
        .replace(/\bimport\.meta\.url\b/g, `new URL(${JSON.stringify(compiled)}, import.meta.url).href`)
        .replace(/\bimport\.meta\.dirname\b/g, folder === '.' ? 'import.meta.dirname' : `(import.meta.dirname + ${JSON.stringify(`/${folder}`)})`)
      return { contents, loader: 'ts' }
    })
  }
}

const result = await build({
  entryPoints: [join(SRC, 'server.ts')],
  outfile: join(DIST, 'server.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  // The oldest Node the service runs on (package.json engines).
  target: 'node20.12',
  external,
  plugins: [ownLocation],
  // Not minified: stack traces in the logs keep our function names. The map (not loaded by Node unless asked with
  // --enable-source-maps) turns a dist/server.js line back into a src/ file and line.
  sourcemap: 'linked',
  sourcesContent: false,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  write: false
})
const written = writeAllIfChanged(result.outputFiles)

const bytes = result.metafile.outputs[relative(ROOT, join(DIST, 'server.js')).split('\\').join('/')]?.bytes ?? 0
console.log(`service bundled into dist/server.js: ${Object.keys(result.metafile.inputs).length} modules, ${bytes} B${written === 0 ? ' (unchanged)' : ''}`)
