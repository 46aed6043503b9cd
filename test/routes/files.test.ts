// Signed download links and MiniMax's GET /v1/files/retrieve, against the real service and the fake MiniMax.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { fakeVideoBytes } from '../fixtures/fake-minimax.js'
import { startWebhookConsumer } from '../fixtures/webhook-consumer.js'
import { getJson, postJson, startStack, submitBody, tempDir, type Stack } from '../helper.js'

const FAST = { RECONCILE_TICK_MS: '20', RECONCILE_AFTER_MS: '150', RECONCILE_BACKOFF_MS: '100', RECONCILE_BACKOFF_MAX_MS: '400' }
const AUTH = { authorization: 'Bearer token-a' }
const TOKENS = { API_TOKENS: 'token-a,token-b' }

async function finished (stack: Stack, id: string, until: (task: any) => boolean = (task) => task.status === 'success'): Promise<any> {
  const deadline = Date.now() + 5000
  for (;;) {
    const task = (await getJson(`${stack.url}/v1/tasks/${id}`, AUTH)).body
    if (until(task)) return task
    if (Date.now() > deadline) throw new Error(`not there: ${JSON.stringify(task)}`)
    await sleep(20)
  }
}

async function submitted (stack: Stack, extra: Record<string, unknown> = {}): Promise<{ id: string, task_id: string }> {
  const res = await postJson(`${stack.url}/v1/video_generation`, submitBody(extra), AUTH)
  if (res.status !== 200) throw new Error(`submit: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

t.test('a lookup carries a signed download_url that serves the video without a bearer header', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, ...TOKENS } })
  const { id } = await submitted(stack)
  const task = await finished(stack, id, (task) => task.video?.url)
  t.match(task.video, { url: /^http:\/\/127\.0\.0\.1:\d+\/download\//, download_url: `${stack.url}/v1/files/download/${id}?expires=`, width: null, archive: null })
  const expires = Number(new URL(task.video.download_url).searchParams.get('expires'))
  t.equal(task.video.download_expires_at, new Date(expires * 1000).toISOString())
  t.ok(expires * 1000 - Date.now() > 3590_000 && expires * 1000 - Date.now() <= 3601_000, 'DOWNLOAD_LINK_TTL_S: an hour')

  const redirect = await fetch(task.video.download_url, { redirect: 'manual' })
  t.equal(redirect.status, 302)
  t.equal(redirect.headers.get('location'), task.video.url, 'to the provider\'s link')
  t.equal(redirect.headers.get('cache-control'), 'private, no-store')
  const video = await fetch(task.video.download_url)
  t.equal(video.status, 200)
  t.same(Buffer.from(await video.arrayBuffer()), fakeVideoBytes(task.file_id))
})

t.test('a link followed before the provider link is known fetches it on demand', async (t) => {
  // The reconciler never runs on its own here, so only the signed link can fetch the provider's link.
  const stack = await startStack(t, { env: { ...TOKENS, RECONCILE_TICK_MS: '3600000' } })
  const { id } = await submitted(stack)
  const task = await finished(stack, id)
  t.equal(task.video.url, null, 'no provider link yet')
  t.equal(task.video.expires_at, null)
  const video = await fetch(task.video.download_url)
  t.equal(video.status, 200)
  t.same(Buffer.from(await video.arrayBuffer()), fakeVideoBytes(task.file_id))
  t.equal(stack.fake.requests.filter((r) => r.path === '/v1/files/retrieve').length, 1, 'one file look-up at the provider')
  t.match((await finished(stack, id)).video, { url: /\/download\// }, 'and it is kept')
})

t.test('expired, altered and other tasks\' links are refused with 403; a bad query with 400', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, ...TOKENS } })
  const [first, second] = [await submitted(stack), await submitted(stack)]
  await finished(stack, first.id)
  await finished(stack, second.id)
  const links = stack.app.downloadLinks.links

  const expired = links.sign(first.id, 'video', 60, Date.now() - 120_000)
  const gone = await getJson(expired.url)
  t.equal(gone.status, 403)
  t.match(gone.body, { code: 'download_link_expired', message: /expired/ })

  const good = new URL(links.sign(first.id, 'video', 60).url)
  const later = new URL(good)
  later.searchParams.set('expires', String(Number(good.searchParams.get('expires')) + 86_400))
  const otherTask = new URL(good.href.replace(first.id, second.id))
  const flipped = new URL(good)
  const signature = good.searchParams.get('signature')!
  flipped.searchParams.set('signature', (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1))
  for (const [what, url] of [['a later expiry', later], ['another task', otherTask], ['an altered signature', flipped]] as const) {
    const res = await getJson(url.href)
    t.equal(res.status, 403, what)
    t.equal(res.body.code, 'download_link_invalid', what)
  }
  t.equal((await getJson(`${stack.url}/v1/files/download/${first.id}`)).body.code, 'invalid_request', 'no signature: 400')
  t.equal((await getJson(`${good.href}&extra=1`)).status, 400, 'unknown parameters are refused')
  t.equal((await fetch(good, { redirect: 'manual' })).status, 302, 'the unaltered link works')
})

t.test('an archived video is served by its signed link with Range: 206', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, ...TOKENS, VIDEO_DIR: tempDir(t) } })
  const { id } = await submitted(stack)
  const task = await finished(stack, id, (task) => task.video?.archive?.state === 'stored')
  const expected = fakeVideoBytes(task.file_id)
  const part = await fetch(task.video.download_url, { headers: { range: 'bytes=1000-1999' } })
  t.equal(part.status, 206)
  t.equal(part.headers.get('content-type'), 'video/mp4')
  t.equal(part.headers.get('content-range'), `bytes 1000-1999/${expected.length}`)
  t.same(Buffer.from(await part.arrayBuffer()), expected.subarray(1000, 2000))
  const before = stack.fake.requests.length
  t.same(Buffer.from(await (await fetch(task.video.download_url)).arrayBuffer()), expected)
  t.equal(stack.fake.requests.length, before, 'served from the archive, not the provider')
})

t.test('the success notification carries a download link that works', async (t) => {
  const consumer = await startWebhookConsumer()
  t.teardown(() => consumer.close())
  // The reconciler is kept from fetching the provider link, so the message carries only what the status change knew.
  const stack = await startStack(t, { env: { ...TOKENS, NOTIFY_ALLOW_PRIVATE: 'true', RECONCILE_TICK_MS: '3600000' } })
  const { id } = await submitted(stack, { notify_url: consumer.url })
  await finished(stack, id)
  const messages = await consumer.waitFor(2)
  const success = messages.map((m) => JSON.parse(m.body)).find((body) => body.status === 'success')
  t.match(success.video, { url: null, download_url: `${stack.url}/v1/files/download/${id}?expires=` })
  const ttl = Date.parse(success.video.download_expires_at) - Date.now()
  t.ok(ttl > 47 * 3600_000 && ttl <= 48 * 3600_000 + 1000, 'DOWNLOAD_LINK_NOTIFY_TTL_S: two days, beyond the retry schedule')
  const video = await fetch(success.video.download_url)
  t.equal(video.status, 200)
  t.same(Buffer.from(await video.arrayBuffer()), fakeVideoBytes(success.file_id))
  t.equal(messages.map((m) => JSON.parse(m.body)).find((body) => body.status === 'processing').video, null, 'no video before success')
})

t.test('GET /v1/files/retrieve answers in MiniMax\'s shape; refusals as MiniMax gives them', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, ...TOKENS } })
  const { id, task_id: taskId } = await submitted(stack)
  // Once the provider's link is fetched, its stated size is known.
  const task = await finished(stack, id, (task) => task.video?.url)
  const res = await fetch(`${stack.url}/v1/files/retrieve?file_id=${task.file_id}`, { headers: AUTH })
  t.equal(res.status, 200)
  const body = await res.json() as any
  t.match(body, {
    file: { file_id: task.file_id, bytes: fakeVideoBytes(task.file_id).length, filename: `${taskId}.mp4`, purpose: 'video_generation', download_url: `${stack.url}/v1/files/download/${id}?expires=` },
    base_resp: { status_code: 0, status_msg: 'success' }
  })
  t.equal(typeof body.file.file_id, 'string', 'every digit kept')
  t.equal(body.file.created_at, Math.floor(Date.parse(task.updated_at) / 1000))
  t.same(Buffer.from(await (await fetch(body.file.download_url)).arrayBuffer()), fakeVideoBytes(task.file_id))

  const refusals: Array<[string, Record<string, string>, number, RegExp]> = [
    ['no token', {}, 1004, /Bearer/],
    ['a wrong token', { authorization: 'Bearer wrong' }, 1004, /Bearer/],
    ['another caller', { authorization: 'Bearer token-b' }, 2013, new RegExp(`file ${task.file_id} not found`)]
  ]
  for (const [what, headers, code, message] of refusals) {
    const refused = await fetch(`${stack.url}/v1/files/retrieve?file_id=${task.file_id}`, { headers })
    t.equal(refused.status, 200, `${what}: HTTP 200, as MiniMax`)
    t.match(await refused.json(), { base_resp: { status_code: code, status_msg: message } }, what)
  }
  const unknown = await getJson(`${stack.url}/v1/files/retrieve?file_id=123456789012345678`, AUTH)
  t.match(unknown.body, { code: 'not_found', base_resp: { status_code: 2013, status_msg: 'invalid params: file 123456789012345678 not found' } })
  t.match((await getJson(`${stack.url}/v1/files/retrieve`, AUTH)).body, { code: 'invalid_request', base_resp: { status_code: 2013 } }, 'file_id is required')
  // The query route hides another caller's task the same way.
  t.match((await getJson(`${stack.url}/v1/query/video_generation?task_id=${taskId}`, { authorization: 'Bearer token-b' })).body, { base_resp: { status_code: 2013 } })
  t.match((await getJson(`${stack.url}/v1/query/video_generation?task_id=${taskId}`, AUTH)).body, { status: 'Success', file_id: task.file_id })
})

t.test('a Modellix task goes through query and retrieve with our id standing in for the file id', async (t) => {
  const stack = await startStack(t, { env: { ...FAST, ...TOKENS } })
  const { id } = await submitted(stack, { provider: 'modellix' })
  await finished(stack, id)
  const query = await getJson(`${stack.url}/v1/query/video_generation?task_id=${id}`, AUTH)
  t.match(query.body, { status: 'Success', file_id: id })
  const file = await getJson(`${stack.url}/v1/files/retrieve?file_id=${id}`, AUTH)
  t.match(file.body, { file: { file_id: id, download_url: `${stack.url}/v1/files/download/${id}?expires=` }, base_resp: { status_code: 0 } })
  t.equal((await fetch(file.body.file.download_url)).status, 200)
})
