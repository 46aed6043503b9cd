// The link key: generated once and kept (a restart keeps links working), or configured and shared; never logged.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { buildApp } from '../../src/app.js'
import { KeptSecretsRepository } from '../../src/db/kept-secrets-repository.js'
import { LogCapture, startStack, postJson, submitBody, testConfig, sqliteDb } from '../helper.js'
import { setTimeout as sleep } from 'node:timers/promises'

const SECRET = 'configured-download-link-secret-0123456789'

t.test('a generated key is kept in the database: links survive a restart; only its fingerprint is logged', async (t) => {
  const logs = new LogCapture()
  const config = testConfig(t, { LOG_LEVEL: 'debug' })
  const first = await buildApp(config, { logger: logs.logger })
  await first.ready()
  const id = randomUUID()
  const link = new URL(first.downloadLinks.forLookup({ id } as never).url)
  const key = new KeptSecretsRepository(sqliteDb(first)).latest('download_link')
  t.match(key, /^[A-Za-z0-9_-]{43}$/, 'a key of 32 random bytes generated')
  const warning = logs.lines.find((line) => typeof line.download_link_secret_sha256 === 'string')
  t.match(warning, { level: 40, download_link_secret_sha256: /^[0-9a-f]{12}$/ }, 'its generation is logged with a fingerprint')
  t.notOk(logs.raw.includes(key!), 'the key itself is not in the logs')
  await first.close()

  const again = await buildApp(config)
  t.teardown(() => again.close())
  await again.ready()
  t.equal(new KeptSecretsRepository(sqliteDb(again)).latest('download_link'), key, 'the same key, not a second one')
  t.equal(again.downloadLinks.links.check(id, 'video', Number(link.searchParams.get('expires')), link.searchParams.get('signature')!), 'ok', 'the link still checks out')
})

t.test('DOWNLOAD_LINK_SECRET: instances on different databases honour each other\'s links; none is generated', async (t) => {
  const apps = await Promise.all([1, 2].map(async () => {
    const app = await buildApp(testConfig(t, { DOWNLOAD_LINK_SECRET: SECRET }))
    t.teardown(() => app.close())
    await app.ready()
    return app
  }))
  const id = randomUUID()
  const link = new URL(apps[0]!.downloadLinks.forLookup({ id } as never).url)
  t.equal(apps[1]!.downloadLinks.links.check(id, 'video', Number(link.searchParams.get('expires')), link.searchParams.get('signature')!), 'ok')
  t.equal(new KeptSecretsRepository(sqliteDb(apps[0]!)).latest('download_link'), undefined, 'none generated')
  const generated = await buildApp(testConfig(t))
  t.teardown(() => generated.close())
  await generated.ready()
  t.equal(generated.downloadLinks.links.check(id, 'video', Number(link.searchParams.get('expires')), link.searchParams.get('signature')!), 'invalid', 'another key refuses it')
})

t.test('a followed link leaves neither the key nor its signature in the logs', async (t) => {
  const logs = new LogCapture()
  const stack = await startStack(t, { logs, env: { LOG_LEVEL: 'debug', DOWNLOAD_LINK_SECRET: SECRET, RECONCILE_TICK_MS: '20' } })
  const { body } = await postJson(`${stack.url}/v1/video_generation`, submitBody())
  while ((await stack.app.taskStore.queries.byId(body.id))?.status !== 'success') await sleep(20)
  const url = (await (await fetch(`${stack.url}/v1/tasks/${body.id}`)).json() as any).video.download_url as string
  t.equal((await fetch(url)).status, 200)
  const signature = new URL(url).searchParams.get('signature')!
  t.ok(logs.lines.some((line) => (line.req as { url?: string } | undefined)?.url?.endsWith('signature=[redacted]')), 'the request is logged without its signature')
  t.notOk(logs.raw.includes(signature), 'the signature is not in the logs')
  t.notOk(logs.raw.includes(SECRET), 'the key is not in the logs')
})
