// `npm run build` (after tsc): bundles the dashboard (ui/) with esbuild into dist/ui, with content-hashed asset names.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = join(ROOT, 'dist', 'ui')

rmSync(OUT, { recursive: true, force: true })
mkdirSync(join(OUT, 'assets'), { recursive: true })

const result = await build({
  entryPoints: [join(ROOT, 'ui', 'src', 'main.tsx')],
  outdir: join(OUT, 'assets'),
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
  logLevel: 'warning'
})

const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path))
const js = outputs.find((name) => /^main-.*\.js$/.test(name))
const css = outputs.find((name) => /^main-.*\.css$/.test(name))
if (!js || !css) throw new Error(`the bundle lacks its script or stylesheet: ${outputs.join(', ')}`)

// Relative links: the page works under any prefix a proxy mounts it at, as long as it ends in /ui/.
const html = readFileSync(join(ROOT, 'ui', 'index.html'), 'utf8').replace('%JS%', `assets/${js}`).replace('%CSS%', `assets/${css}`)
writeFileSync(join(OUT, 'index.html'), html)
const bytes = outputs.map((name) => `${name} ${result.metafile.outputs[Object.keys(result.metafile.outputs).find((p) => p.endsWith(name))!]!.bytes} B`)
console.log(`dashboard built into dist/ui: ${bytes.join(', ')}`)
