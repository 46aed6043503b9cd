import t from 'tap'
import { failure, rawServer } from './helpers.js'
import { MiniMaxClient } from '../../src/providers/minimax.js'
import { fakeVideoBytes, startFakeMiniMax } from '../fixtures/fake-minimax.js'
import { freePort } from '../helper.js'

const request = { model: 'S2V-01', image: 'https://example.com/a.png' }

t.test('create answers MiniMax\'s task_id as a string, with the trace id', async (t) => {
  const fake = await startFakeMiniMax()
  t.teardown(() => fake.close())
  const client = new MiniMaxClient({ baseUrl: fake.url, apiKey: fake.apiKey, createTimeoutMs: 5000 })
  const { taskId, traceId } = await client.submit(request, null)
  t.match(taskId, /^\d{18}$/)
  t.ok(fake.tasks.has(taskId))
  t.ok(traceId)
  t.equal(fake.requests[0]?.authorization, `Bearer ${fake.apiKey}`)
})

t.test('business errors become "rejected" with MiniMax\'s code and message', async (t) => {
  const fake = await startFakeMiniMax()
  t.teardown(() => fake.close())
  const client = new MiniMaxClient({ baseUrl: fake.url, apiKey: fake.apiKey, createTimeoutMs: 5000 })
  for (const code of [1002, 1004, 1008, 1026, 2013, 2049]) {
    fake.set({ createErrorCode: code })
    const err = await failure(client.submit(request, null))
    t.equal(err.kind, 'rejected', `${code}`)
    t.equal(err.providerCode, code)
    t.notOk(err.outcomeUnknown, 'nothing was created')
    t.match(err.message, /trace id/)
  }
  fake.reset()
  const wrongKey = new MiniMaxClient({ baseUrl: fake.url, apiKey: 'wrong', createTimeoutMs: 5000 })
  t.equal((await failure(wrongKey.submit(request, null))).providerCode, 2049)
})

t.test('5xx, resets and timeouts leave the outcome unknown; a refused connection does not', async (t) => {
  const fake = await startFakeMiniMax()
  t.teardown(() => fake.close())
  const client = new MiniMaxClient({ baseUrl: fake.url, apiKey: fake.apiKey, createTimeoutMs: 300 })

  fake.set({ createHttpStatus: 503 })
  const http = await failure(client.submit(request, null))
  t.same([http.kind, http.httpStatus, http.outcomeUnknown], ['http', 503, true])

  fake.set({ createHttpStatus: null, createResetConnection: true })
  const reset = await failure(client.submit(request, null))
  t.same([reset.kind, reset.outcomeUnknown], ['broken', true])

  fake.set({ createResetConnection: false, createDelayMs: 1000 })
  const timeout = await failure(client.submit(request, null))
  t.same([timeout.kind, timeout.outcomeUnknown], ['timeout', true])

  const closed = new MiniMaxClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, apiKey: 'k', createTimeoutMs: 1000 })
  const refused = await failure(closed.submit(request, null))
  t.same([refused.kind, refused.outcomeUnknown], ['unreachable', false])
})

t.test('answers that are not MiniMax\'s envelope are "broken", HTTP 4xx/429 are known failures', async (t) => {
  let answer: { status: number, body: string } = { status: 200, body: 'not json' }
  const url = await rawServer(t, (_req, res) => { res.writeHead(answer.status, { 'trace-id': 'abc123' }).end(answer.body) })
  const client = new MiniMaxClient({ baseUrl: url, apiKey: 'k', createTimeoutMs: 1000 })

  t.equal((await failure(client.submit(request, null))).kind, 'broken')
  answer = { status: 200, body: '{"base_resp":{"status_code":0,"status_msg":"success"}}' }
  t.match((await failure(client.submit(request, null))).message, /no usable task_id.*abc123/)
  answer = { status: 429, body: '' }
  const limited = await failure(client.submit(request, null))
  t.same([limited.kind, limited.httpStatus, limited.outcomeUnknown], ['http', 429, false])

  answer = { status: 200, body: '{"task_id":115334141465231361,"base_resp":{"status_code":0,"status_msg":"success"}}' }
  t.equal((await client.submit(request, null)).taskId, '115334141465231361', 'a bare-number task_id keeps its digits')
})

t.test('query reports the task as MiniMax spells it; a failed task is an answer, an unknown one an error', async (t) => {
  const fake = await startFakeMiniMax({ behaviour: { pushes: 'none', pushDelayMs: 10 } })
  t.teardown(() => fake.close())
  const calls: string[] = []
  const client = new MiniMaxClient({ baseUrl: fake.url, apiKey: fake.apiKey, createTimeoutMs: 5000, onCall: (call) => calls.push(`${call.operation}:${call.ok}`) })
  const { taskId } = await client.submit(request, null)
  t.match((await client.query(taskId)).providerStatus, /^(Preparing|Queueing|Processing)$/)
  await fake.waitFor(() => fake.tasks.get(taskId)?.status === 'Success')
  const done = await client.query(taskId)
  t.match(done, { providerStatus: 'Success', fileId: /^\d+$/, error: null, video: null })

  const link = await client.videoLink(taskId, done.fileId)
  t.match(link.url, new RegExp(`^${fake.url}/download/${done.fileId}\\.mp4\\?Expires=`))
  const expires = Number(new URL(link.url).searchParams.get('Expires')) * 1000
  t.ok(Date.parse(link.expiresAt) < expires && Date.parse(link.expiresAt) > expires - 3600_000, 'the URL\'s own expiry, minus a margin')
  t.equal(link.bytes, fakeVideoBytes(done.fileId!).length, 'the file\'s stated size')
  t.equal((await failure(client.videoLink(taskId, null))).kind, 'rejected', 'no file_id, no link')

  fake.set({ finalStatus: 'failed', failureCode: 1026 })
  const failed = (await client.submit(request, null)).taskId
  await fake.waitFor(() => fake.tasks.get(failed)?.status === 'Fail')
  t.match(await client.query(failed), { providerStatus: 'Fail', error: { code: '1026' } })

  t.match(await failure(client.query('399999999999999999')), { kind: 'rejected', providerCode: 2013 }, 'an unknown task is an error')
  t.ok(calls.includes('query:true') && calls.includes('retrieve:true') && calls.includes('query:false'), 'every call is reported')
})
