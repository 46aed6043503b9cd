// Reads a Dockerfile and a .dockerignore the way Docker does, so the container test and the image check share one parser.
import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs'
import { join, posix } from 'node:path'

// ---------------------------------------------------------------- Dockerfile parsing

export interface Instruction { keyword: string, args: string }
export interface Stage { name: string, base: string, instructions: Instruction[] }
export interface Copy { from?: string, chown?: string, sources: string[], dest: string }
export interface Healthcheck { options: Record<string, string>, test: string[] }

// Joins `\` continuations and drops comments and blank lines (heredocs are not supported).
function logicalLines (text: string): string[] {
  const lines: string[] = []
  let pending = ''
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*#/.test(raw) || (pending && raw.trim() === '')) continue // Docker drops comments even inside a continuation
    const continued = /\\\s*$/.test(raw)
    pending += (pending ? ' ' : '') + (continued ? raw.replace(/\\\s*$/, '') : raw).trim()
    if (!continued) {
      if (pending) lines.push(pending)
      pending = ''
    }
  }
  if (pending) lines.push(pending)
  return lines
}

export function parseDockerfile (text: string): Stage[] {
  const stages: Stage[] = []
  for (const line of logicalLines(text)) {
    const [, word = '', args = ''] = /^(\S+)\s*(.*)$/s.exec(line) ?? []
    const keyword = word.toUpperCase()
    if (keyword === 'FROM') {
      const words = args.split(/\s+/).filter((w) => !w.startsWith('--'))
      const asIndex = words.findIndex((w) => w.toUpperCase() === 'AS')
      stages.push({ base: words[0] ?? '', name: asIndex > 0 ? words[asIndex + 1] ?? '' : String(stages.length), instructions: [] })
    } else {
      stages.at(-1)?.instructions.push({ keyword, args }) // ARGs before the first FROM are not needed here
    }
  }
  return stages
}

// Splits like a shell: whitespace separates words, quotes group and are removed, a backslash escapes.
export function shellWords (text: string): string[] {
  const words: string[] = []
  let word: string | undefined
  let quote = ''
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    if (quote) {
      if (c === quote) quote = ''
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i] as string
      else word += c
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word)
      word = undefined
    } else if (c === '"' || c === "'") {
      quote = c
      word ??= ''
    } else {
      word = (word ?? '') + (c === '\\' && i + 1 < text.length ? text[++i] as string : c)
    }
  }
  if (word !== undefined) words.push(word)
  return words
}

// The exec (JSON array) form when it parses, else the shell form as one string, like Docker does.
export function execOrShell (args: string): string[] | string {
  if (args.trim().startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(args)
      if (Array.isArray(parsed) && parsed.every((item) => typeof item === 'string')) return parsed
    } catch {}
  }
  return args.trim()
}

// Leading `--name=value` flags, then the rest of the instruction.
function splitFlags (args: string): { flags: Record<string, string>, rest: string } {
  const flags: Record<string, string> = {}
  let rest = args.trim()
  for (let match = /^--([\w-]+)(?:=(\S*))?\s*/.exec(rest); match; match = /^--([\w-]+)(?:=(\S*))?\s*/.exec(rest)) {
    flags[match[1] as string] = match[2] ?? 'true'
    rest = rest.slice(match[0].length)
  }
  return { flags, rest }
}

export function parseCopy (args: string): Copy {
  const { flags, rest } = splitFlags(args)
  const form = execOrShell(rest)
  const paths = typeof form === 'string' ? shellWords(form) : form
  return { from: flags.from, chown: flags.chown, sources: paths.slice(0, -1), dest: paths.at(-1) ?? '' }
}

// Both `ENV K=V K2="v 2"` and the legacy `ENV K rest of line`.
export function parseEnv (args: string): Array<[string, string]> {
  const words = shellWords(args)
  if (!words[0]?.includes('=')) {
    const key = words[0] ?? ''
    return [[key, shellWords(args.trim().slice(key.length)).join(' ')]]
  }
  return words.map((word) => [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)])
}

export function parseHealthcheck (args: string): Healthcheck | undefined {
  const { flags, rest } = splitFlags(args)
  const [, keyword = '', command = ''] = /^(\S+)\s*(.*)$/s.exec(rest) ?? []
  if (keyword.toUpperCase() !== 'CMD') return undefined // NONE disables the base image's check
  const form = execOrShell(command)
  return { options: flags, test: typeof form === 'string' ? ['CMD-SHELL', form] : ['CMD', ...form] }
}

export function instructions (stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args)
}

// The stage's environment after all its ENV lines (later lines win).
export function stageEnv (stage: Stage): Map<string, string> {
  return new Map(instructions(stage, 'ENV').flatMap(parseEnv))
}

// The folders a stage declares as VOLUMEs (JSON or space-separated form).
export function stageVolumes (stage: Stage): string[] {
  return instructions(stage, 'VOLUME').flatMap((args) => {
    const form = execOrShell(args)
    return typeof form === 'string' ? shellWords(form) : form
  })
}

// The ports a stage EXPOSEs, without their `/tcp` suffix.
export function stageExposed (stage: Stage): string[] {
  return instructions(stage, 'EXPOSE').flatMap((args) => shellWords(args)).map((port) => port.split('/')[0] ?? '')
}

// Where a COPY puts a source: a file keeps its name in a folder dest, but a folder's *contents* land in dest itself.
export function copyTarget (workdir: string, copy: Copy, source: string, kind: string): string {
  const dest = posix.resolve(workdir, copy.dest)
  const intoFolder = kind === 'file' && (copy.dest.endsWith('/') || copy.dest === '.' || copy.sources.length > 1)
  return intoFolder ? posix.join(dest, posix.basename(source)) : dest
}

// Each COPY with the WORKDIR in force at that point, in order.
export function copiesWithWorkdir (stage: Stage): Array<{ index: number, workdir: string, copy: Copy }> {
  const result: Array<{ index: number, workdir: string, copy: Copy }> = []
  let workdir = '/'
  stage.instructions.forEach((instruction, index) => {
    if (instruction.keyword === 'WORKDIR') workdir = posix.resolve(workdir, instruction.args.trim())
    if (instruction.keyword === 'COPY' || instruction.keyword === 'ADD') result.push({ index, workdir, copy: parseCopy(instruction.args) })
  })
  return result
}

// Go-style durations as Docker and compose write them: 1m30s, 15s, 500ms.
export function durationMs (value: string | undefined, fallback: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  let total = 0
  for (const [, amount, unit] of (value ?? fallback).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(amount) * (units[unit as string] ?? 0)
  return total
}

// ---------------------------------------------------------------- .dockerignore matching

export interface IgnoreRule { negate: boolean, regex: RegExp }

// Docker's patterns: `*` and `?` stay inside a folder, `**` spans folders, paths are relative to the context root.
function globToRegExp (pattern: string): RegExp {
  let source = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === '*' && pattern[i + 1] === '*') {
      i++
      if (pattern[i + 1] === '/') {
        i++
        source += '(?:.*/)?'
      } else {
        source += '.*'
      }
    } else if (c === '*') {
      source += '[^/]*'
    } else if (c === '?') {
      source += '[^/]'
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1)
      source += pattern.slice(i, end + 1).replace(/^\[!/, '[^')
      i = end
    } else {
      source += (c === '\\' ? pattern[++i] ?? '' : c).replace(/[.+^${}()|\\/]/g, '\\$&')
    }
  }
  return new RegExp(`^${source}$`)
}

export function parseDockerignore (text: string): IgnoreRule[] {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line && !line.startsWith('#')).map((line) => {
    const negate = line.startsWith('!')
    const pattern = posix.normalize(negate ? line.slice(1).trim() : line).replace(/^\/+|\/+$/g, '')
    return { negate, regex: globToRegExp(pattern) }
  })
}

// A path is left out when it or a parent folder matches; the last matching rule wins, as in Docker.
export function isIgnored (rules: IgnoreRule[], path: string): boolean {
  const parts = path.split('/')
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
  let ignored = false
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.regex.test(candidate))) ignored = !rule.negate
  }
  return ignored
}

// ---------------------------------------------------------------- what a COPY copies

// A COPY source as a path relative to the root it copies from (the build context, or another stage's `/`).
function rootRelative (source: string): string {
  return posix.normalize(source).replace(/^\/+|\/+$/g, '').replace(/^\.$/, '')
}

function hasWildcard (path: string): boolean {
  return /[*?[]/.test(posix.basename(path))
}

// The paths a COPY source names under root: itself, or a wildcard's matches in its folder.
function sourceMatches (root: string, source: string): string[] {
  const path = rootRelative(source)
  if (hasWildcard(path)) {
    const folder = posix.dirname(path)
    const regex = globToRegExp(posix.basename(path))
    const names = existsSync(join(root, folder)) ? readdirSync(join(root, folder)) : []
    return names.filter((name) => regex.test(name)).map((name) => posix.join(folder, name))
  }
  return existsSync(join(root, path)) ? [path] : []
}

// A named source is followed if it is a link (Docker does so); links *inside* a copied folder stay links.
function isFolder (root: string, path: string): boolean {
  return statSync(join(root, path)).isDirectory()
}

// Every file and symlink under a root-relative folder (symlinks are copied as links, never followed).
function filesUnder (root: string, folder: string): string[] {
  const absolute = join(root, folder)
  return readdirSync(absolute, { recursive: true, encoding: 'utf8' })
    .filter((entry) => !lstatSync(join(absolute, entry)).isDirectory())
    .map((entry) => posix.join(folder, entry.split('\\').join('/')))
}

// Context-relative files a COPY source names: the file, every file under a folder, or a wildcard's matches.
export function contextFiles (root: string, source: string): string[] {
  return sourceMatches(root, source).flatMap((path) => isFolder(root, path) ? filesUnder(root, path) : [path])
}

export interface PlannedCopy { from: string, to: string } // from: relative to the root copied from; to: absolute in the image

// Each file one COPY copies and where it lands, as Docker resolves it: sources relative to the root they come from
// (the build context, or the other stage's `/`), dest relative to the WORKDIR; ignored context files are left out.
export function plannedCopies (root: string, copy: Copy, workdir: string, rules: IgnoreRule[] = []): PlannedCopy[] {
  const dest = posix.resolve(workdir, copy.dest)
  return copy.sources.flatMap((source) => {
    const wildcard = hasWildcard(rootRelative(source))
    return sourceMatches(root, source).flatMap((path) => {
      if (isFolder(root, path)) return filesUnder(root, path).map((file) => ({ from: file, to: posix.join(dest, posix.relative(path, file)) }))
      const to = wildcard ? posix.join(dest, posix.basename(path)) : copyTarget(workdir, copy, path, 'file')
      return [{ from: path, to }]
    })
  }).filter(({ from }) => !isIgnored(rules, from))
}
