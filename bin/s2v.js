#!/usr/bin/env node
// Launcher of the s2v command. A fresh checkout after `npm ci` has no dist/ (npm ci does not build), so run the
// TypeScript source through tsx (a dev dependency); once `npm run build` has compiled every src/cli file, run that.
import { readdirSync, statSync } from 'node:fs'

const root = new URL('../', import.meta.url)
const source = new URL('src/cli/', root)
const built = new URL('dist/cli/', root)

function mtime (url) {
  try {
    return statSync(url).mtimeMs
  } catch {
    return null
  }
}

/** True when every src/cli/*.ts has its dist/cli/*.js, none older than its source (tsc -b rewrites only what changed). */
function builtIsCurrent () {
  let names
  try {
    names = readdirSync(source).filter(name => name.endsWith('.ts'))
  } catch {
    // No sources (an image pruned to dist/): the build is all there is.
    return mtime(new URL('index.js', built)) !== null
  }
  return names.every(name => {
    const js = mtime(new URL(name.replace(/\.ts$/, '.js'), built))
    return js !== null && js >= (mtime(new URL(name, source)) ?? Infinity)
  })
}

if (builtIsCurrent()) {
  await import(new URL('index.js', built).href)
} else {
  let register
  try {
    ({ register } = await import('tsx/esm/api'))
  } catch {
    process.stderr.write('s2v: dist/cli is missing or older than src/cli, and tsx is not installed: run `npm ci` (or `npm run build`) first\n')
    process.exit(1)
  }
  register()
  await import(new URL('index.ts', source).href)
}
