// `npm run build` (after tsc): bundles the dashboard (ui/) with esbuild into dist/ui, with content-hashed asset names.
// Files are replaced only when they change (a service may be serving them meanwhile), and the old build's assets are
// removed only after the new page that no longer names them.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { writeAllIfChanged } from './write-if-changed.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = join(ROOT, 'dist', 'ui')
const ASSETS = join(OUT, 'assets')

mkdirSync(ASSETS, { recursive: true })

const result = await build({
  entryPoints: [join(ROOT, 'ui', 'src', 'main.tsx')],
  outdir: ASSETS,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  // Current Chromium, Firefox and Safari; nothing older is supported by the dashboard.
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: join(ROOT, 'ui', 'tsconfig.json'),
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  write: false
})

const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path))
const js = outputs.find((name) => /^main-.*\.js$/.test(name))
const css = outputs.find((name) => /^main-.*\.css$/.test(name))
if (!js || !css) throw new Error(`the bundle lacks its script or stylesheet: ${outputs.join(', ')}`)

// Relative links: the page works under any prefix a proxy mounts it at, as long as it ends in /ui/.
const html = readFileSync(join(ROOT, 'ui', 'index.html'), 'utf8').replace('%JS%', `assets/${js}`).replace('%CSS%', `assets/${css}`)
const written = writeAllIfChanged([...result.outputFiles, { path: join(OUT, 'index.html'), contents: html }])
for (const name of readdirSync(ASSETS)) if (!outputs.includes(name)) rmSync(join(ASSETS, name), { recursive: true, force: true })
const bytes = outputs.map((name) => `${name} ${result.metafile.outputs[Object.keys(result.metafile.outputs).find((p) => p.endsWith(name))!]!.bytes} B`)
console.log(`dashboard built into dist/ui: ${bytes.join(', ')}${written === 0 ? ' (unchanged)' : ''}`)
