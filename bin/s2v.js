#!/usr/bin/env node
// Launcher of the s2v command. A fresh checkout after `npm ci` has no dist/ (npm ci does not build), so run the
// TypeScript source through tsx (a dev dependency); once `npm run build` made dist/cli newer than src/cli, run that.
import { readdirSync, statSync } from 'node:fs'

const root = new URL('../', import.meta.url)
const built = new URL('dist/cli/index.js', root)
const source = new URL('src/cli/', root)

function mtime (url) {
  try {
    return statSync(url).mtimeMs
  } catch {
    return null
  }
}

function newestSource () {
  let newest = null
  try {
    for (const name of readdirSync(source)) {
      if (name.endsWith('.ts')) newest = Math.max(newest ?? 0, mtime(new URL(name, source)) ?? 0)
    }
  } catch {}
  return newest
}

const builtAt = mtime(built)
const sourceAt = newestSource()
if (builtAt !== null && (sourceAt === null || builtAt >= sourceAt)) {
  await import(built.href)
} else if (sourceAt !== null) {
  let register
  try {
    ({ register } = await import('tsx/esm/api'))
  } catch {
    process.stderr.write('s2v: dist/ is missing or older than src/, and tsx is not installed: run `npm ci` (or `npm run build`) first\n')
    process.exit(1)
  }
  register()
  await import(new URL('index.ts', source).href)
} else {
  process.stderr.write('s2v: neither dist/cli nor src/cli found next to this launcher\n')
  process.exit(1)
}
