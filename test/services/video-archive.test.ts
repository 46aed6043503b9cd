// The archive (VIDEO_DIR): every finished video downloaded once, served with Range support, surviving restarts.
import t from 'tap'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../../src/app.js'
import type { TaskRow } from '../../src/db/tasks-repository.js'
import type { Reconciler } from '../../src/services/reconciler.js'
import { TaskStore } from '../../src/services/task-store.js'
import { VideoArchiver } from '../../src/services/video-archive.js'
import { sqlite } from '../db/task-storage-engines.js'
import { fakeVideoBytes } from '../fixtures/fake-minimax.js'
import { getJson, postJson, seedTask, startStack, submitBody, taskId, tempDir, type Stack } from '../helper.js'

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

t.test('a download cut short by a stop is given back: due again at once, not when its claim runs out', async (t) => {
  const store = new TaskStore(await sqlite.open(t))
  const task = await seedTask(store, { task_id: taskId() })
  await store.applyUpdate(task.seq, null, { status: 'success', providerStatus: 'Success', fileId: '1' }, 'poll')
  await store.saveVideoLink(task.seq, { url: 'https://cdn.example.com/v.mp4', expiresAt: new Date(Date.now() + 3600_000).toISOString(), width: null, height: null }, { archive: true, pollingDone: true })
  let started = () => {}
  const downloading = new Promise<void>((resolve) => { started = resolve })
  const leaseMs = 600_000
  const archiver = new VideoArchiver({
    store,
    // The link is fresh: nothing to ask the provider.
    reconciler: { freshVideoLink: async (row: TaskRow) => row } as unknown as Reconciler,
    dir: tempDir(t),
    maxBytes: 1_000_000,
    log: { info () {}, warn () {}, error () {} },
    tickMs: 60_000,
    downloadTimeoutMs: 60_000,
    leaseMs,
    // A CDN that never answers: the download lasts until the archiver stops.
    fetch: async (_url, init) => {
      started()
      return await new Promise<never>((_resolve, reject) => { init!.signal!.addEventListener('abort', () => reject(init!.signal!.reason)) })
    }
  })
  const pass = archiver.runOnce()
  await downloading
  t.ok(Date.parse((await store.queries.bySeq(task.seq))!.archive_next_at!) > Date.now() + leaseMs / 2, 'claimed for its lease while it downloads')
  await archiver.stop()
  await pass
  const row = (await store.queries.bySeq(task.seq))!
  t.match(row, { archive_state: 'pending', archive_attempts: 0, archive_path: null }, 'still pending, the cut-short attempt not counted')
  t.ok(Date.parse(row.archive_next_at!) <= Date.now(), 'and due again now, for the next start or another replica')
})
