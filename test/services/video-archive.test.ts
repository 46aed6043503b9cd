// The archive (VIDEO_DIR): every finished video downloaded once, served with Range support, surviving restarts.
import t from 'tap'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../../src/app.js'
import { fakeVideoBytes } from '../fixtures/fake-minimax.js'
import { getJson, postJson, startStack, submitBody, tempDir, type Stack } from '../helper.js'

const FAST = { RECONCILE_TICK_MS: '20', RECONCILE_AFTER_MS: '150', RECONCILE_BACKOFF_MS: '100', RECONCILE_BACKOFF_MAX_MS: '400' }

async function archived (stack: Stack, id: string): Promise<any> {
  const deadline = Date.now() + 5000
  for (;;) {
    const task = (await getJson(`${stack.url}/v1/tasks/${id}`)).body
    if (task.video?.archive?.state === 'stored') return task
    if (Date.now() > deadline) throw new Error(`not archived: ${JSON.stringify(task.video)}`)
    await sleep(20)
  }
}

t.test('a finished video is archived once and served with correct bytes and Range answers, after a restart too', async (t) => {
  const videoDir = tempDir(t)
  const stack = await startStack(t, { env: { ...FAST, VIDEO_DIR: videoDir } })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  const task = await archived(stack, body.id)
  const expected = fakeVideoBytes(task.file_id)
  t.equal(task.video.archive.bytes, expected.length)
  t.equal(task.video.archive.sha256, createHash('sha256').update(expected).digest('hex'))
  t.ok(existsSync(join(videoDir, `${body.id}.mp4`)))
  const downloads = stack.fake.requests.filter((r) => r.path.startsWith('/download/')).length
  t.equal(downloads, 1, 'downloaded once')

  const whole = await fetch(`${stack.url}/v1/tasks/${body.id}/video`)
  t.equal(whole.status, 200)
  t.equal(whole.headers.get('content-type'), 'video/mp4')
  t.equal(whole.headers.get('cache-control'), 'private', 'a caller\'s video: no shared cache keeps it')
  t.same(Buffer.from(await whole.arrayBuffer()), expected)

  const part = await fetch(`${stack.url}/v1/tasks/${body.id}/video`, { headers: { range: 'bytes=100-199' } })
  t.equal(part.status, 206)
  t.equal(part.headers.get('cache-control'), 'private')
  t.equal(part.headers.get('content-range'), `bytes 100-199/${expected.length}`)
  t.same(Buffer.from(await part.arrayBuffer()), expected.subarray(100, 200))
  t.equal((await fetch(`${stack.url}/v1/tasks/${body.id}/video`, { headers: { range: `bytes=${expected.length + 10}-` } })).status, 416)

  // The provider's link dies and the provider forgets; our copy stays.
  await stack.app.close()
  await stack.fake.close()
  const again = await buildApp(stack.config)
  t.teardown(() => again.close())
  const served = await again.inject({ url: `/v1/tasks/${body.id}/video`, headers: { range: 'bytes=0-9' } })
  t.equal(served.statusCode, 206)
  t.same(served.rawPayload, expected.subarray(0, 10))
})

t.test('a download interrupted by a restart is finished by the next process', async (t) => {
  const videoDir = tempDir(t)
  const stack = await startStack(t, { env: { ...FAST, VIDEO_DIR: videoDir } })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  await stack.fake.waitFor(() => stack.fake.tasks.get(body.task_id)?.status === 'Success')
  await stack.app.close() // may stop before or during the download

  const again = await buildApp(stack.config)
  t.teardown(() => again.close())
  await again.ready()
  const deadline = Date.now() + 5000
  while ((await again.taskStore.queries.byId(body.id))?.archive_state !== 'stored' && Date.now() < deadline) await sleep(20)
  const row = (await again.taskStore.queries.byId(body.id))!
  t.equal(row.archive_state, 'stored', 'archived by the next process')
  t.equal(row.archive_bytes, fakeVideoBytes(row.file_id!).length)
})
