// Property-based fuzzing of every route the OpenAPI document lists, against the built server (`node dist/server.js`)
// and the fakes: generated and mutated requests never get a 5xx, never crash the process, and the challenge still
// answers afterwards. FUZZ_RUNS (default 3000) sets how many requests; FUZZ_SEED replays a run.
import t from 'tap'
import fc from 'fast-check'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { Agent, request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startFakeMiniMax } from './fixtures/fake-minimax.js'
import { startFakeModellix } from './fixtures/fake-modellix.js'
import { freePort, getJson, postJson, submitBody, tempDir } from './helper.js'

const SERVER = join(import.meta.dirname, '..', 'dist', 'server.js')
const skip = existsSync(SERVER) ? false : 'run `npm run build` first (npm test does)'
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000)
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)
// A request that gets no answer in this time failed, unless it may wait on purpose (an event stream, a long-poll).
const REQUEST_TIMEOUT_MS = 3000
const TOKEN = 'fuzz-token'
const ADMIN_TOKEN = 'fuzz-admin-token'
// Rate limits out of reach, so generated requests reach the handlers instead of stopping at 429.
const UNLIMITED = '1000000'

type Parameter = { name: string, in: 'path' | 'query' | 'header', schema?: Schema }
type Schema = { type?: string | string[], enum?: unknown[], minimum?: number, maximum?: number, anyOf?: Schema[] }
type Operation = { method: string, path: string, parameters: Parameter[], body: boolean }
type FuzzRequest = { method: string, path: string, headers: Record<string, string>, body: Buffer | null, mayWait: boolean, route: string }
type Answer = { status: number, timedOut: boolean, body: string }

t.test('thousands of generated and mutated requests over every route: no 5xx, no crash, the challenge still answers', { skip, timeout: Math.max(175_000, RUNS * 60) }, async (t) => {
  const fake = await startFakeMiniMax({ behaviour: { pushDelayMs: 5 } })
  t.teardown(() => fake.close())
  const modellix = await startFakeModellix({ behaviour: { stepMs: 50 } })
  t.teardown(() => modellix.close())
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const child = spawn(process.execPath, [SERVER], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_PATH: join(tempDir(t), 's2v.db'),
      PUBLIC_BASE_URL: base,
      MINIMAX_API_KEY: fake.apiKey,
      MINIMAX_BASE_URL: fake.url,
      // Creates go out at once: queued tasks never change, so every fuzzed long-poll on one would wait its full time.
      MINIMAX_SUBMIT_RPM: '1000000',
      MODELLIX_SUBMIT_RPM: '1000000',
      MODELLIX_API_KEY: modellix.apiKey,
      MODELLIX_BASE_URL: modellix.url,
      API_TOKENS: `fuzz:${TOKEN}`,
      ADMIN_TOKENS: `ops:${ADMIN_TOKEN}`,
      // Refused at delivery time by the SSRF guard: dead letters for the delivery routes to work on.
      NOTIFY_URL: 'http://127.0.0.1:9/hook',
      SUBMIT_RATE_LIMIT: UNLIMITED,
      READ_RATE_LIMIT: UNLIMITED,
      CALLBACK_RATE_LIMIT: UNLIMITED,
      REFRESH_RATE_LIMIT: UNLIMITED,
      LOG_LEVEL: 'error'
    },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => { stderr += chunk })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  for (let ready = false; !ready; await sleep(50)) {
    if (child.exitCode !== null) throw new Error(`the server exited: ${stderr}`)
    ready = await fetch(`${base}/readyz`).then((r) => r.ok, () => false)
  }

  // Real ids for the generators to use next to random ones, so requests also reach past the lookups.
  const auth = { authorization: `Bearer ${TOKEN}` }
  const submitted = await Promise.all([
    postJson(`${base}/v1/video_generation`, submitBody({ metadata: { n: 1 } }), auth),
    postJson(`${base}/v1/video_generation`, submitBody({ provider: 'modellix' }), auth)
  ])
  for (const answer of submitted) t.equal(answer.status, 200, 'a seed task was created')
  await fake.waitFor(() => [...fake.tasks.values()].every((task) => task.status === 'Success'))
  const deliveries = (await getJson(`${base}/v1/deliveries`, auth)).body.items as Array<{ id: string }>
  const tokens = [...fake.tasks.values()].map((task) => (task.callback_url ?? '').split('/get_callback/')[1] ?? '')
  const known = {
    ids: submitted.flatMap((answer) => [answer.body.id, answer.body.task_id] as string[]),
    tokens,
    deliveries: deliveries.map((delivery) => delivery.id),
    taskIds: [...fake.tasks.keys()]
  }

  const document = (await getJson(`${base}/openapi.json`)).body as { paths: Record<string, Record<string, { parameters?: Parameter[], requestBody?: unknown }>> }
  const operations: Operation[] = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ method: method.toUpperCase(), path, parameters: operation.parameters ?? [], body: operation.requestBody !== undefined })))
  t.ok(operations.length >= 15, `${operations.length} operations in the OpenAPI document`)

  const agent = new Agent({ keepAlive: true, maxSockets: 4 })
  t.teardown(() => agent.destroy())
  const counts = { requests: 0, byClass: new Map<string, number>(), byRoute: new Map<string, number>(), waited: 0 }
  const failures: string[] = []
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)

  t.teardown(() => { for (const failure of failures.slice(0, 5)) t.comment(`failed: ${failure}`) })
  await fc.assert(fc.asyncProperty(requestArbitrary(operations, known), async (request) => {
    const answer = await send(base, request, agent)
    counts.requests++
    bump(counts.byRoute, request.route)
    if (answer.timedOut) {
      counts.waited++
      return request.mayWait // only an event stream or a long-poll may keep us waiting
    }
    bump(counts.byClass, `${Math.floor(answer.status / 100)}xx`)
    const ok = answer.status >= 200 && answer.status < 500 && child.exitCode === null
    if (!ok) failures.push(`${answer.status} ${answer.body.slice(0, 300)} for ${JSON.stringify({ ...request, body: request.body?.subarray(0, 200).toString() })}`)
    return ok
  }), { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: false })

  t.comment(`fuzz: ${counts.requests} requests, ${[...counts.byClass].map(([k, v]) => `${k} ${v}`).join(', ')}, ${counts.waited} streams/long-polls cut off by the client`)
  t.comment(`fuzz per route: ${[...counts.byRoute].map(([k, v]) => `${k} ${v}`).join(', ')}`)
  t.ok(counts.requests >= RUNS, `${counts.requests} requests sent`)
  t.equal(counts.byClass.get('5xx') ?? 0, 0, 'no 5xx answer')
  t.equal(child.exitCode, null, 'the server never crashed')
  for (const operation of operations) t.ok(counts.byRoute.has(`${operation.method} ${operation.path}`), `${operation.method} ${operation.path} was fuzzed`)

  const challenge = await postJson(`${base}/get_callback`, { challenge: 'still-there' })
  t.same([challenge.status, challenge.body], [200, { challenge: 'still-there' }], 'the challenge still answers')
  t.equal((await fetch(`${base}/readyz`)).status, 200, 'still ready')
  t.notMatch(stderr, /"level":(50|60)/, 'no error was logged')
})

function send (base: string, request: FuzzRequest, agent: Agent): Promise<Answer> {
  return new Promise((resolve) => {
    const req = httpRequest(`${base}${request.path}`, { method: request.method, headers: request.headers, agent }, (res) => {
      // An event stream that opened has answered (its status is what we check); it would run until cut off.
      if (res.headers['content-type']?.startsWith('text/event-stream')) {
        req.destroy()
        return resolve({ status: res.statusCode ?? 0, timedOut: false, body: '' })
      }
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { if (body.length < 1000) body += chunk })
      res.once('end', () => resolve({ status: res.statusCode ?? 0, timedOut: false, body }))
      res.once('error', () => resolve({ status: res.statusCode ?? 0, timedOut: false, body }))
    })
    req.setTimeout(REQUEST_TIMEOUT_MS, () => {
      req.destroy()
      resolve({ status: 0, timedOut: true, body: '' })
    })
    // A refused or reset connection is an answer too (e.g. a body over the limit): it is not a 5xx, and the
    // process check afterwards catches a crash.
    req.once('error', (err) => resolve({ status: 499, timedOut: false, body: err.message }))
    req.end(request.body ?? undefined)
  })
}

// ---------------------------------------------------------------- generators

type Known = { ids: string[], tokens: string[], deliveries: string[], taskIds: string[] }

function requestArbitrary (operations: Operation[], known: Known): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...operations).chain((operation) => fc.record({
    method: fc.oneof({ weight: 9, arbitrary: fc.constant(operation.method) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') }),
    path: pathArbitrary(operation, known),
    query: queryArbitrary(operation),
    headers: headersArbitrary(operation),
    body: bodyArbitrary(operation, known)
  }).map(({ method, path, query, headers, body }) => {
    const wait = /(?:^|&)wait=/.test(query)
    const sent = method === 'GET' || method === 'HEAD' ? null : body
    return {
      method,
      path: query ? `${path}?${query}` : path,
      headers: sent === null ? headers : { ...headers, 'content-length': String(sent.length) },
      body: sent,
      mayWait: /\/events$/.test(operation.path) || wait,
      route: `${operation.method} ${operation.path}`
    }
  }))
}

const nasty = fc.constantFrom('', ' ', '..', '%', '%zz', '%00', '\u0000', '\u202e', '😀', 'null', 'undefined', '-1', '0', '1e309',
  '99999999999999999999', '<script>', '\' OR 1=1 --', '$' + '{jndi:x}', '__proto__', 'constructor', 'a'.repeat(300), '/..//..//etc/passwd')
const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), nasty)

function pathArbitrary (operation: Operation, known: Known): fc.Arbitrary<string> {
  const names = [...operation.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string)
  const value = (name: string) => fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...(name === 'token' ? known.tokens : /deliver/.test(operation.path) ? known.deliveries : known.ids)) },
    { weight: 2, arbitrary: text.map(encodeURIComponent) },
    { weight: 1, arbitrary: text } // raw: invalid percent-encoding, slashes, spaces
  )
  return fc.tuple(...names.map(value)).map((values) => {
    let path = operation.path
    names.forEach((name, i) => { path = path.replace(`{${name}}`, String(values[i]).replace(/[\s#?]/g, encodeURIComponent)) })
    return path
  })
}

function valueFor (schema: Schema | undefined): fc.Arbitrary<string> {
  const choices: Array<fc.Arbitrary<string>> = [text]
  const enums = schema?.enum ?? schema?.anyOf?.flatMap((s) => s.enum ?? [])
  if (enums?.length) choices.push(fc.constantFrom(...enums.map(String)))
  if (schema?.type === 'integer' || schema?.type === 'number') {
    choices.push(fc.integer({ min: (schema.minimum ?? 0) - 2, max: (schema.maximum ?? 100) + 2 }).map(String), fc.double().map(String))
  }
  return fc.oneof(...choices)
}

function queryArbitrary (operation: Operation): fc.Arbitrary<string> {
  const declared = operation.parameters.filter((p) => p.in === 'query')
  const pairs = declared.map((p) => fc.option(valueFor(p.schema).map((v) => `${p.name}=${encodeURIComponent(v)}`), { nil: undefined, freq: 2 }))
  const extra = fc.array(fc.tuple(text, text).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`), { maxLength: 2 })
  // A long-poll waits at most 60 s; the client gives up sooner, which is allowed.
  return fc.tuple(fc.tuple(...pairs), extra, fc.boolean()).map(([declaredPairs, extraPairs, repeat]) => {
    const all = [...declaredPairs.filter((p): p is string => p !== undefined), ...extraPairs]
    if (repeat && all[0]) all.push(all[0]) // a repeated key becomes an array
    return all.join('&')
  })
}

function headersArbitrary (operation: Operation): fc.Arbitrary<Record<string, string>> {
  const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 })
  const declared = operation.parameters.filter((p) => p.in === 'header')
  return fc.record({
    authorization: fc.oneof(
      { weight: 6, arbitrary: fc.constant(`Bearer ${TOKEN}`) },
      { weight: 2, arbitrary: fc.constant(`Bearer ${ADMIN_TOKEN}`) },
      { weight: 1, arbitrary: headerText },
      { weight: 1, arbitrary: fc.constant('') }
    ),
    'content-type': fc.oneof(
      { weight: 6, arbitrary: fc.constant('application/json') },
      { weight: 3, arbitrary: fc.constantFrom('text/plain', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', '', '*/*', 'application/jsonx') },
      { weight: 1, arbitrary: headerText }
    ),
    range: fc.oneof(fc.constant(''), fc.constantFrom('bytes=0-0', 'bytes=0-', 'bytes=-1', 'bytes=999999999-', 'bytes=5-1', 'bytes=0-1,3-4', 'lines=1-2'), headerText),
    'last-event-id': fc.oneof(fc.constant(''), fc.constantFrom('processing', 'success', 'failed', 'submitting'), headerText),
    'idempotency-key': fc.oneof(fc.constant(''), headerText, fc.constant('k'.repeat(300))),
    'x-request-id': fc.oneof(fc.constant(''), headerText),
    accept: fc.oneof(fc.constant(''), fc.constantFrom('application/json', 'text/event-stream', 'text/html', '*/*', 'image/png')),
    declared: fc.tuple(...declared.map((p) => fc.option(valueFor(p.schema), { nil: undefined })))
  }).map(({ declared: values, ...headers }) => {
    const out: Record<string, string> = {}
    for (const [name, value] of Object.entries(headers)) if (value !== '') out[name] = value
    declared.forEach((p, i) => { const v = values[i]; if (v !== undefined && /^[\x20-\x7e]*$/.test(v)) out[p.name.toLowerCase()] = v })
    return out
  })
}

// Valid bodies for each kind of route, to be mutated: the deeper a request gets, the more code it reaches.
function seedsFor (operation: Operation, known: Known): unknown[] {
  if (operation.path.startsWith('/get_callback')) {
    return [
      { challenge: 'abc' },
      { task_id: known.taskIds[0], status: 'success', file_id: '123456789012345', base_resp: { status_code: 0, status_msg: 'success' } },
      { task_id: known.taskIds[1], status: 'Fail', base_resp: { status_code: 1027, status_msg: 'sensitive' } }
    ]
  }
  if (operation.path === '/v1/video_generation') return [submitBody(), submitBody({ provider: 'modellix' }), submitBody({ notify_url: 'https://hooks.example.com/x' })]
  if (operation.path === '/v1/deliveries/retry') return [{ since: '2026-01-01T00:00:00Z' }, { since: '2026-01-01T00:00:00Z', until: '2030-01-01T00:00:00Z' }]
  return [{}]
}

function mutate (seed: unknown): fc.Arbitrary<unknown> {
  if (typeof seed !== 'object' || seed === null) return fc.jsonValue()
  const record = seed as Record<string, unknown>
  const keys = Object.keys(record)
  const some = fc.oneof(fc.jsonValue({ maxDepth: 3 }), nasty, fc.bigInt().map((n) => n), fc.constant(null))
  return fc.oneof(
    fc.constant(seed),
    keys.length ? fc.constantFrom(...keys).map((key) => { const copy = { ...record }; delete copy[key]; return copy }) : fc.constant(seed),
    keys.length ? fc.tuple(fc.constantFrom(...keys), some).map(([key, value]) => ({ ...record, [key]: value })) : fc.constant(seed),
    fc.tuple(text, some).map(([key, value]) => ({ ...record, [key]: value })),
    fc.constant([seed]),
    fc.constant({ ...record, metadata: nest(200) })
  )
}

function nest (depth: number): unknown {
  let value: unknown = 'bottom'
  for (let i = 0; i < depth; i++) value = { a: value }
  return value
}

function bodyArbitrary (operation: Operation, known: Known): fc.Arbitrary<Buffer | null> {
  const json = (value: unknown) => Buffer.from(JSON.stringify(value, (_key, v) => typeof v === 'bigint' ? v.toString() : v) ?? 'null')
  const mutated = fc.constantFrom(...seedsFor(operation, known)).chain(mutate).map(json)
  return fc.oneof(
    { weight: operation.body ? 6 : 1, arbitrary: mutated },
    { weight: 2, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.jsonValue().map(json) },
    { weight: 1, arbitrary: fc.string({ maxLength: 80 }).map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map((bytes) => Buffer.from(bytes)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Buffer.from('['.repeat(50_000)), // deep nesting for the parser
        Buffer.from('{"challenge":123456789012345678901234567890}'),
        Buffer.from('{"task_id":115334141465231360,"status":"success"}'),
        Buffer.from('{"__proto__":{"polluted":true},"challenge":"x"}'),
        Buffer.from('{"challenge":"x"'),
        Buffer.alloc(70 * 1024, 'a') // over the callback body limit
      )
    }
  )
}
