// Every error code the API can answer is named in the README's error list and in the OpenAPI document, and both
// name no code the API cannot answer. Reads src/, README.md and /openapi.json: a new code anywhere fails here until documented.
import t from 'tap'
import type { InjectOptions } from 'fastify'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ERROR_CODES } from '../src/errors.js'
import { build } from './helper.js'

const ROOT = join(import.meta.dirname, '..')
const catalogued = new Set(Object.keys(ERROR_CODES))

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith('.ts') ? [path] : []
  })
}
const sources = sourceFiles(join(ROOT, 'src')).map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, 'utf8') }))

/** The README section under `## <title>`, up to the next `## `. */
function readmeSection (title: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const start = readme.indexOf(`\n## ${title}\n`)
  if (start < 0) throw new Error(`README.md has no "## ${title}" section`)
  const end = readme.indexOf('\n## ', start + 1)
  return readme.slice(start, end < 0 ? undefined : end)
}

t.test('every code the source hands to an error is catalogued in src/errors.ts', async (t) => {
  // The ErrorCode type already makes this a compile error; this names the file, should a cast slip one through.
  const uses = /(?:new AppError|errorBody|refused)\(\s*[^,()]+,\s*'([a-z0-9_]+)'|\bcode:\s*'([a-z0-9_]+)'/g
  let seen = 0
  for (const { path, text } of sources) {
    for (const match of text.matchAll(uses)) {
      const code = (match[1] ?? match[2]) as string
      // `code: '…'` also names task error codes (e.g. provider_failed, stored in a task's `error`); only AppError-shaped ones count here.
      if (match[2] !== undefined && !/statusCode/.test(text.slice(Math.max(0, (match.index ?? 0) - 60), match.index))) continue
      seen++
      t.ok(catalogued.has(code), `${path}: "${code}" is in ERROR_CODES`)
    }
  }
  t.ok(seen >= 20, `${seen} error sites found in src/ (the scan still reads the code)`)
})

t.test('every catalogued code is answered somewhere (no stale entries)', async (t) => {
  const outside = sources.filter(({ path }) => path !== join('src', 'errors.ts')).map(({ text }) => text).join('\n')
  const factories = readFileSync(join(ROOT, 'src', 'errors.ts'), 'utf8').split('export const errors =')[1] ?? ''
  for (const code of catalogued) {
    t.ok(outside.includes(`'${code}'`) || factories.includes(`'${code}'`), `${code} is used by the code`)
  }
})

t.test('the README\'s error list names every code, and only those', async (t) => {
  const section = readmeSection('Errors')
  for (const code of catalogued) t.match(section, `\`${code}\``, `README "Errors" names ${code}`)
  // The full list is the table whose first column is the code.
  const listed = [...section.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1] as string)
  t.ok(listed.length >= catalogued.size, `the README table lists ${listed.length} codes`)
  for (const code of listed) t.ok(catalogued.has(code), `README lists ${code}, which the API answers`)
  t.equal(new Set(listed).size, listed.length, 'no code is listed twice')
})

t.test('the OpenAPI document names every code in the error shape, and only those', async (t) => {
  const app = await build(t)
  const document = (await app.inject('/openapi.json')).json() as { components: { schemas: Record<string, { properties?: Record<string, { description?: string }> }> } }
  const description = document.components.schemas.ErrorResponse?.properties?.code?.description ?? ''
  for (const code of catalogued) t.match(description, `\`${code}\``, `OpenAPI ErrorResponse.code names ${code}`)
  const named = [...description.matchAll(/`([a-z0-9_]+)`/g)].map((m) => m[1] as string)
  t.same(named.filter((code) => !catalogued.has(code)), [], 'the document names no other code')
})

t.test('the answers really carry these codes', async (t) => {
  const app = await build(t, { API_TOKENS: 'tok' })
  const auth = { authorization: 'Bearer tok' }
  const cases: Array<[string, InjectOptions, number, string]> = [
    ['no token', { url: '/v1/tasks' }, 401, 'unauthorized'],
    ['unknown task', { url: '/v1/tasks/nope', headers: auth }, 404, 'not_found'],
    ['unknown route', { url: '/nowhere' }, 404, 'not_found'],
    ['bad query', { url: '/v1/tasks?limit=0', headers: auth }, 400, 'invalid_request'],
    ['bad cursor', { url: '/v1/tasks?cursor=zzz', headers: auth }, 400, 'invalid_cursor'],
    ['text/plain', { method: 'POST', url: '/v1/video_generation', headers: { ...auth, 'content-type': 'text/plain' }, payload: '{}' }, 415, 'unsupported_media_type'],
    ['no provider key', { method: 'POST', url: '/v1/video_generation', headers: auth, payload: { subject_reference: [{ type: 'character', image: ['https://example.com/a.png'] }] } }, 503, 'provider_not_configured'],
    ['bare push', { method: 'POST', url: '/get_callback', payload: { task_id: '1', status: 'success' } }, 401, 'callback_token_required']
  ]
  for (const [name, request, status, code] of cases) {
    const res = await app.inject(request)
    t.equal(res.statusCode, status, name)
    t.match(res.json(), { statusCode: status, code, message: String, request_id: String }, name)
    t.ok(catalogued.has(code), `${code} is catalogued`)
  }
})
