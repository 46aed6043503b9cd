// The build's outputs are written only when their bytes change, each by rename: a build that changes nothing (every
// `npm start` runs one in `prestart`) touches no file, so a service already running from dist/, or starting from it at
// that moment, never reads a half-written bundle or finds the dashboard missing.
import { readFileSync, renameSync, writeFileSync } from 'node:fs'

/** Writes `bytes` to `path` unless it holds them already; true when it wrote. */
export function writeIfChanged (path: string, bytes: Uint8Array | string): boolean {
  const next = typeof bytes === 'string' ? Buffer.from(bytes) : bytes
  let current: Buffer | null = null
  try {
    current = readFileSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (current !== null && current.equals(next)) return false
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, next)
  renameSync(temporary, path)
  return true
}

/** Writes each file in order (a page after the assets it names); how many it wrote. */
export function writeAllIfChanged (files: ReadonlyArray<{ path: string, contents: Uint8Array | string }>): number {
  return files.filter((file) => writeIfChanged(file.path, file.contents)).length
}
