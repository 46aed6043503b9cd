import t from 'tap'
import { build, submitBody, sqliteDb } from '../helper.js'

const submit = (app: Awaited<ReturnType<typeof build>>, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/v1/video_generation', headers: { 'content-type': 'application/json', ...headers }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })

t.test('without MINIMAX_API_KEY a valid submit answers 503 with a clear message and creates nothing', async (t) => {
  const app = await build(t)
  const res = await submit(app, submitBody())
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'provider_not_configured', message: /MINIMAX_API_KEY/, base_resp: { status_code: 1000 } })
  t.same(sqliteDb(app).prepare('SELECT id FROM tasks').all(), [])
})

/** `levels` objects around `inner`. */
const nest = (levels: number, inner: unknown): unknown => levels === 0 ? inner : { n: nest(levels - 1, inner) }
/** A submit body text whose metadata is the given JSON text, as sent (JSON.stringify could not even build some of these). */
const rawSubmit = (metadataJson: string) => `${JSON.stringify(submitBody()).slice(0, -1)},"metadata":{"m":${metadataJson}}}`

t.test('bad submit bodies get 4xx JSON with MiniMax\'s base_resp, never a 500', async (t) => {
  const app = await build(t, { MINIMAX_API_KEY: 'k', MINIMAX_BASE_URL: 'http://127.0.0.1:9' })
  const image = (value: unknown) => submitBody({ subject_reference: [{ type: 'character', image: [value] }] })
  const cases: Array<[string, unknown, number, string]> = [
    ['malformed JSON', '{"model":', 400, 'bad_request'],
    ['empty body', '', 400, 'invalid_request'],
    ['callback_url is ours', submitBody({ callback_url: 'https://evil.example/cb' }), 400, 'callback_url_not_allowed'],
    ['another model', submitBody({ model: 'T2V-01' }), 400, 'invalid_request'],
    ['fields of other models', submitBody({ duration: 6 }), 400, 'invalid_request'],
    ['prompt too long', submitBody({ prompt: 'x'.repeat(2001) }), 400, 'invalid_request'],
    ['two subjects', submitBody({ subject_reference: [{ type: 'character', image: ['https://a/1.png'] }, { type: 'character', image: ['https://a/2.png'] }] }), 400, 'invalid_request'],
    ['two images', image(['https://a/1.png', 'https://a/2.png']), 400, 'invalid_request'],
    ['no subject', submitBody({ subject_reference: [] }), 400, 'invalid_request'],
    ['ftp image', image('ftp://a/1.png'), 400, 'invalid_request'],
    ['gif data URL', image('data:image/gif;base64,R0lGOD'), 400, 'invalid_request'],
    ['number image', image(42), 400, 'invalid_request'],
    ['prompt_optimizer not boolean', submitBody({ prompt_optimizer: 'maybe' }), 400, 'invalid_request'],
    ['metadata not an object', submitBody({ metadata: 'x' }), 400, 'invalid_request'],
    ['metadata too big', submitBody({ metadata: { blob: 'x'.repeat(5000) } }), 400, 'metadata_too_large'],
    // No coercion: a body is taken with the types it was sent with.
    ['prompt as a number', submitBody({ prompt: 123 }), 400, 'invalid_request'],
    ['image as a string, not an array', submitBody({ subject_reference: [{ type: 'character', image: 'https://example.com/face.jpg' }] }), 400, 'invalid_request'],
    ['subject_reference as an object', submitBody({ subject_reference: { type: 'character', image: ['https://example.com/face.jpg'] } }), 400, 'invalid_request'],
    ['prompt_optimizer as "true"', submitBody({ prompt_optimizer: 'true' }), 400, 'invalid_request'],
    ['prompt_optimizer as 1', submitBody({ prompt_optimizer: 1 }), 400, 'invalid_request'],
    ['prompt as null', submitBody({ prompt: null }), 400, 'invalid_request'],
    // Deep or hostile metadata is a 400 before anything recursive walks it.
    ['metadata 11 levels deep', submitBody({ metadata: nest(10, { x: 1 }) }), 400, 'metadata_too_deep'],
    ['metadata 200,000 levels deep', rawSubmit(`${'['.repeat(200_000)}${']'.repeat(200_000)}`), 400, 'metadata_too_deep'],
    ['metadata of 10,000 values', submitBody({ metadata: { list: Array(10_000).fill(0) } }), 400, 'metadata_too_large'],
    ['metadata with __proto__', rawSubmit('{"__proto__":{"admin":true}}'), 400, 'bad_request'],
    ['metadata with constructor.prototype', rawSubmit('{"constructor":{"prototype":{"admin":true}}}'), 400, 'bad_request'],
    ['image over 20 MB', image(`data:image/png;base64,${'A'.repeat(28 * 1024 * 1024)}`), 400, 'image_too_large']
  ]
  for (const [name, payload, status, code] of cases) {
    const res = await submit(app, payload)
    t.equal(res.statusCode, status, name)
    t.match(res.json(), { statusCode: status, code, message: String, base_resp: { status_code: 2013 } }, name)
  }
  const wrongType = await app.inject({ method: 'POST', url: '/v1/video_generation', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify(submitBody()) })
  t.equal(wrongType.statusCode, 415, 'a text/plain body on a JSON route is the wrong media type, even when it holds JSON')
  t.match(wrongType.json(), { code: 'unsupported_media_type', base_resp: { status_code: 2013 }, request_id: String })
  const xml = await app.inject({ method: 'POST', url: '/v1/video_generation', headers: { 'content-type': 'application/xml' }, payload: '<a/>' })
  t.equal(xml.statusCode, 415)
  t.equal(xml.json().code, 'unsupported_media_type')
  const tooBig = await submit(app, `{"prompt":"${'x'.repeat(31 * 1024 * 1024)}"}`)
  t.equal(tooBig.statusCode, 413)
  t.equal(tooBig.json().code, 'body_too_large')
  t.same(sqliteDb(app).prepare('SELECT id FROM tasks').all(), [], 'no task was created by any of them')
})

t.test('a refused field or value says which field, why, and what is accepted', async (t) => {
  const app = await build(t, { MINIMAX_API_KEY: 'k', MINIMAX_BASE_URL: 'http://127.0.0.1:9' })
  const duration = (await submit(app, submitBody({ duration: 6 }))).json()
  t.match(duration.message, /"duration"/, 'names the field')
  t.match(duration.message, /unknown fields are refused/, 'says why')
  t.match(duration.message, /accepted fields: .*prompt.*subject_reference/, 'lists what is accepted')
  t.notMatch(duration.message, /must NOT have additional properties/)
  const model = (await submit(app, submitBody({ model: 'T2V-01' }))).json()
  t.match(model.message, /body\/model must be "S2V-01"/, 'names the accepted model')
  t.notMatch(model.message, /T2V-01/, 'the value sent is not echoed')
  const provider = (await submit(app, submitBody({ provider: 'openai' }))).json()
  t.match(provider.message, /body\/provider must be one of "minimax", "modellix"/)
  const missing = (await submit(app, { prompt: 'x' })).json()
  t.match(missing.message, /subject_reference/)
})

t.test('internal routes need a bearer token when API_TOKENS is set; callbacks and health never do', async (t) => {
  const app = await build(t, { API_TOKENS: 'alpha,beta' })
  const anonymous = await submit(app, submitBody())
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.headers['www-authenticate'], 'Bearer')
  t.match(anonymous.json(), { code: 'unauthorized', base_resp: { status_code: 1004 } })
  t.equal((await submit(app, submitBody(), { authorization: 'Bearer gamma' })).statusCode, 401)
  t.equal((await submit(app, submitBody(), { authorization: 'Basic alpha' })).statusCode, 401)
  t.equal((await submit(app, submitBody(), { authorization: 'Bearer beta' })).statusCode, 503, 'authenticated, then refused for the missing key')
  for (const url of ['/v1/tasks', '/v1/tasks/x']) {
    t.equal((await app.inject(url)).statusCode, 401, url)
    t.not((await app.inject({ url, headers: { authorization: 'Bearer alpha' } })).statusCode, 401, url)
  }
  // MiniMax-compatible lookups refuse as MiniMax does: HTTP 200, base_resp 1004 (what its clients read as an auth error).
  for (const url of ['/v1/query/video_generation?task_id=1', '/v1/files/retrieve?file_id=1']) {
    const refused = await app.inject(url)
    t.equal(refused.statusCode, 200, url)
    t.match(refused.json(), { statusCode: 401, code: 'unauthorized', base_resp: { status_code: 1004 } }, url)
    t.match((await app.inject({ url, headers: { authorization: 'Bearer alpha' } })).json(), { statusCode: 404, base_resp: { status_code: 2013 } }, url)
  }
  t.equal((await app.inject('/healthz')).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/get_callback', payload: { challenge: 'x' } })).statusCode, 200)
})

t.test('submits are rate limited per caller', async (t) => {
  const app = await build(t, { API_TOKENS: 'alpha,beta', SUBMIT_RATE_LIMIT: '2' })
  const as = (token: string) => submit(app, submitBody(), { authorization: `Bearer ${token}` })
  t.same([(await as('alpha')).statusCode, (await as('alpha')).statusCode, (await as('alpha')).statusCode], [503, 503, 429])
  const limited = await as('alpha')
  t.match(limited.json(), { code: 'rate_limited', base_resp: { status_code: 1002 } })
  t.equal((await as('beta')).statusCode, 503, 'another caller has its own budget')
})
