// Reads README.md's runnable examples and compares the answers they print with real ones (used by test/readme.test.ts).
//
// What counts as an example: every ```sh block (commands, each followed by the answer it prints, if any) and every
// ```js block whose first line is `// <file>.mjs` (saved under that name for a later command to run). A block after
// `<!-- readme-test: skip: <why> -->` is not run; the reason is reported.

/** One command of a sh block, with the answer printed under it (empty: the command prints nothing we check). */
export type Command = { text: string, expected: string, line: number }
export type Example =
  | { kind: 'sh', line: number, commands: Command[], skip: string | null, section: string }
  | { kind: 'file', line: number, name: string, text: string, skip: string | null, section: string }

const FENCE = /^```(\w*)\s*$/
const SKIP = /<!--\s*readme-test:\s*skip:?\s*(.*?)\s*-->/
const FILE_HEADER = /^\/\/\s*([\w.-]+\.mjs)\b/
// A command starts with a lowercase word followed by a space or the end, or with a VAR=value assignment; answers
// start with JSON, `id:`-style SSE fields, `: comments`, or indentation.
const COMMAND_START = /^(?:[a-z][\w.-]*(?:\s|$)|[A-Z_][A-Z0-9_]*=)/

export function parseReadme (markdown: string): Example[] {
  const lines = markdown.split('\n')
  const examples: Example[] = []
  let section = ''
  for (let i = 0; i < lines.length; i++) {
    const heading = /^#{2,4} (.*)/.exec(lines[i] as string)
    if (heading) section = heading[1] as string
    const fence = FENCE.exec(lines[i] as string)
    if (!fence) continue
    const language = fence[1] as string
    const start = i + 1
    let end = start
    while (end < lines.length && !/^```\s*$/.test(lines[end] as string)) end++
    const body = lines.slice(start, end)
    const skip = skipReason(lines, i)
    if (language === 'sh') examples.push({ kind: 'sh', line: start, commands: parseCommands(body, start + 1), skip, section })
    const header = FILE_HEADER.exec(body[0] ?? '')
    if (language === 'js' && header) examples.push({ kind: 'file', line: start, name: header[1] as string, text: body.join('\n') + '\n', skip, section })
    i = end
  }
  return examples
}

// The marker sits on one of the two lines above the fence (a blank line may separate them).
function skipReason (lines: string[], fenceIndex: number): string | null {
  for (const back of [1, 2]) {
    const match = SKIP.exec(lines[fenceIndex - back] ?? '')
    if (match) return match[1] || 'no reason given'
  }
  return null
}

export function parseCommands (body: string[], firstLine: number): Command[] {
  const commands: Command[] = []
  let current: Command | null = null
  let open = false // inside a command that continues (trailing backslash or an open quote)
  for (const [index, line] of body.entries()) {
    if (open && current) {
      current.text += '\n' + line
      open = continues(current.text)
      continue
    }
    if (/^\s*#/.test(line) && !current?.expected) continue // a comment between commands
    if (COMMAND_START.test(line)) {
      current = { text: line, expected: '', line: firstLine + index }
      commands.push(current)
      open = continues(line)
      continue
    }
    if (current) current.expected += (current.expected ? '\n' : '') + line
  }
  for (const command of commands) command.expected = command.expected.replace(/\s+$/, '')
  return commands
}

/** True while a shell command continues on the next line: a trailing backslash, or an unclosed quote. */
function continues (text: string): boolean {
  let quote: string | null = null
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quote) {
      if (c === quote) quote = null
      else if (c === '\\' && quote === '"') i++
    } else if (c === '\'' || c === '"') {
      quote = c
    } else if (c === '\\') {
      if (i === text.length - 1) return true
      i++
    }
  }
  return quote !== null
}

// ---------------------------------------------------------------- printed answers

/** Printed JSON may elide: `…` as a value, `,…}` (more keys), `,…]` (more items), `…` inside a string (any text). */
export function parsePrinted (text: string): unknown {
  const json = text
    .replace(/\[\s*…\s*,/g, '["…",')
    .replace(/\[\s*…\s*]/g, '["…"]')
    .replace(/,\s*…\s*}/g, ',"…":"…"}')
    .replace(/,\s*…\s*]/g, ',"…"]')
    .replace(/:\s*…(?=\s*[,}])/g, ':"…"')
  return JSON.parse(json)
}

type Kind = 'uuid' | 'digits' | 'delivery' | 'secret' | 'modellix' | 'time'
// Values that differ on every run: compared by kind, and remembered so later commands can use the real ones.
const KINDS: Array<[Kind, RegExp]> = [
  ['uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/],
  ['digits', /^\d{12,}$/],
  ['delivery', /^msg_[\w-]+$/],
  ['secret', /^whsec_[A-Za-z0-9+/=]+$/],
  ['modellix', /^task-[\w-]+$/],
  ['time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/]
]
// Numbers that depend on timing or on what ran before, compared by type only.
const VOLATILE_NUMBERS = new Set(['latency_ms', 'retried', 'skipped', 'bytes', 'width', 'height', 'events_total'])

const kindOf = (value: string): Kind | null => KINDS.find(([, pattern]) => pattern.test(value))?.[0] ?? null

/**
 * Where `actual` differs in shape from `printed` (ids and times aside), or null. `ids` maps the README's example ids
 * to the real ones; new pairs are added, and an example id seen again must stand for the same real one.
 */
export function shapeDifference (printed: unknown, actual: unknown, ids: Map<string, string>, path = '$', key = ''): string | null {
  if (printed === '…') return null
  if (typeof printed === 'string') {
    if (typeof actual !== 'string') return `${path}: printed a string, got ${JSON.stringify(actual)}`
    if (printed.includes('…')) return elidedMatch(printed, actual) ? null : `${path}: ${JSON.stringify(actual)} does not fit ${JSON.stringify(printed)}`
    const kind = kindOf(printed)
    if (kind === null) return printed === actual ? null : `${path}: printed ${JSON.stringify(printed)}, got ${JSON.stringify(actual)}`
    if (kindOf(actual) !== kind) return `${path}: printed a ${kind} value, got ${JSON.stringify(actual)}`
    if (kind === 'time') return null
    const known = ids.get(printed)
    if (known !== undefined && known !== actual) return `${path}: the README's ${printed} stood for ${known} before, here for ${actual}`
    ids.set(printed, actual)
    return null
  }
  if (typeof printed === 'number') {
    if (typeof actual !== 'number') return `${path}: printed a number, got ${JSON.stringify(actual)}`
    return VOLATILE_NUMBERS.has(key) || printed === actual ? null : `${path}: printed ${printed}, got ${actual}`
  }
  if (printed === null || typeof printed === 'boolean') return printed === actual ? null : `${path}: printed ${JSON.stringify(printed)}, got ${JSON.stringify(actual)}`
  if (Array.isArray(printed)) {
    if (!Array.isArray(actual)) return `${path}: printed an array, got ${JSON.stringify(actual)}`
    const open = printed.includes('…')
    const items = printed.filter((item) => item !== '…')
    if (open ? actual.length < items.length : actual.length !== items.length) return `${path}: printed ${items.length}${open ? ' or more' : ''} items, got ${actual.length}`
    return matchItems(items, actual, ids, path, open)
  }
  if (typeof printed === 'object') {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return `${path}: printed an object, got ${JSON.stringify(actual)}`
    const p = printed as Record<string, unknown>
    const a = actual as Record<string, unknown>
    const open = '…' in p
    for (const name of Object.keys(p)) {
      if (name === '…') continue
      if (!(name in a)) return `${path}.${name}: printed, missing from the answer`
      const difference = shapeDifference(p[name], a[name], ids, `${path}.${name}`, name)
      if (difference) return difference
    }
    if (!open) {
      const extra = Object.keys(a).filter((name) => !(name in p))
      if (extra.length) return `${path}: the answer has ${extra.join(', ')}, which the README does not print`
    }
    return null
  }
  return `${path}: cannot compare ${JSON.stringify(printed)}`
}

// Items may come in another order (e.g. a push and the create's answer racing): each printed item must match a
// distinct real one. Arrays here are small, so a greedy match with a trial copy of the id map is enough.
function matchItems (items: unknown[], actual: unknown[], ids: Map<string, string>, path: string, open: boolean): string | null {
  const free = actual.map((_, i) => i)
  for (const [i, item] of items.entries()) {
    // In order first: the common case, and the one whose ids the map should learn.
    const ordered = free.includes(i) ? [i, ...free.filter((j) => j !== i)] : free
    let found = -1
    let firstDifference: string | null = null
    for (const j of ordered) {
      const trial = new Map(ids)
      const difference = shapeDifference(item, actual[j], trial, `${path}[${i}]`)
      if (difference === null) {
        for (const [k, v] of trial) ids.set(k, v)
        found = j
        break
      }
      firstDifference ??= difference
    }
    if (found < 0) return firstDifference ?? `${path}[${i}]: no item of the answer fits`
    free.splice(free.indexOf(found), 1)
  }
  return open || free.length === 0 ? null : `${path}: ${free.length} items more than printed`
}

function elidedMatch (printed: string, actual: string): boolean {
  const parts = printed.split('…')
  let at = 0
  for (const [i, part] of parts.entries()) {
    if (i === 0) {
      if (!actual.startsWith(part)) return false
      at = part.length
      continue
    }
    if (i === parts.length - 1) return part === '' || (actual.length - part.length >= at && actual.endsWith(part))
    const found = actual.indexOf(part, at)
    if (found < 0) return false
    at = found + part.length
  }
  return true
}

/** A server-sent event stream as its events (comments such as keep-alives left out: they depend on timing). */
export function sseEvents (text: string): Array<Record<string, string>> {
  return text.split(/\n\n+/).map((block) => {
    const event: Record<string, string> = {}
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue
      const colon = line.indexOf(':')
      event[line.slice(0, colon)] = line.slice(colon + 1).trimStart()
    }
    return event
  }).filter((event) => Object.keys(event).length > 0)
}

/** Replaces the README's example ids (longest first, so no id eats part of another) with the real ones. */
export function substitute (text: string, replacements: Map<string, string>): string {
  let out = text
  for (const [from, to] of [...replacements].sort(([a], [b]) => b.length - a.length)) out = out.split(from).join(to)
  return out
}
