// The secrets storage, the same cases on SQLite and PostgreSQL; on PostgreSQL also replicas (two pools) starting,
// generating and rotating at once.
import t from 'tap'
import { PostgresSecretsStorage, KEPT_SECRET_LOCK_KEYS } from '../../src/db/postgres/secrets-storage.js'
import { secretsStorageOf } from '../../src/plugins/secrets.js'
import { CallerSecrets, ROTATION_GRACE_MS } from '../../src/services/notifications/caller-secrets.js'
import { loadSigningSecrets } from '../../src/services/notifications/secrets.js'
import { loadLinkSecret } from '../../src/services/download-links.js'
import type { KeptSecretKind } from '../../src/services/secrets-storage.js'
import { LogCapture } from '../helper.js'
import { lockWaiters, openTestPool } from '../postgres-cluster.js'
import { postgres, sqlite, type Engine } from './task-storage-engines.js'

// Started before any test is queued (see startPostgres).
const pg = await postgres(t)
const engines: Engine[] = pg ? [sqlite, pg] : [sqlite]

const AT = '2026-12-01T00:00:00.000Z'
const KINDS: KeptSecretKind[] = ['notification', 'download_link']

for (const engine of engines) {
  t.test(`${engine.name}: the first candidate kept is the secret of its kind from then on; the two kinds are apart`, async (t) => {
    const storage = secretsStorageOf(await engine.openDatabase(t))
    t.same(await storage.keep('notification', 'n-1', AT), { secret: 'n-1', generated: true })
    t.same(await storage.keep('notification', 'n-2', AT), { secret: 'n-1', generated: false }, 'a later candidate is not kept')
    t.same(await storage.keep('download_link', 'l-1', AT), { secret: 'l-1', generated: true }, 'the link key is its own')
    t.same(await storage.keep('download_link', 'l-2', AT), { secret: 'l-1', generated: false })
  })

  t.test(`${engine.name}: a caller's current secret is added once; a rotation retires it with its end, forgets expired ones`, async (t) => {
    const storage = secretsStorageOf(await engine.openDatabase(t))
    t.equal(await storage.addCallerSecret('team-a', 's-1', AT), true)
    t.equal(await storage.addCallerSecret('team-a', 's-2', AT), false, 'a caller with a current secret keeps it')
    t.match(await storage.callerSigning('team-a', AT), [{ caller: 'team-a', secret: 's-1', created_at: AT, expires_at: null }])
    await storage.rotateCallerSecret('team-a', 's-3', '2026-12-01T01:00:00.000Z', '2026-12-02T01:00:00.000Z')
    t.match(await storage.callerSigning('team-a', '2026-12-01T01:00:00.000Z'), [
      { secret: 's-3', expires_at: null }, { secret: 's-1', expires_at: '2026-12-02T01:00:00.000Z' }
    ], 'newest first')
    t.match(await storage.callerSigning('team-a', '2026-12-02T01:00:00.000Z'), [{ secret: 's-3' }], 'not at its end')
    await storage.rotateCallerSecret('team-a', 's-4', '2026-12-02T01:00:00.000Z', '2026-12-03T01:00:00.000Z')
    t.same((await storage.callerSigning('team-a', '2000-01-01T00:00:00.000Z')).map((row) => row.secret), ['s-4', 's-3'], 'the expired one is gone')
    t.same(await storage.callerSigning('team-b', AT), [], 'another caller has none')
  })
}

if (pg) {
  t.test('postgres: two replicas starting at once on an empty database load the same generated secrets, kept once', async (t) => {
    const url = await pg.freshUrl()
    const [one, two] = [new PostgresSecretsStorage(openTestPool(t, url)), new PostgresSecretsStorage(openTestPool(t, url))]
    const admin = openTestPool(t, url)
    // A third session holds both locks, so both replicas have found no secret and wait for the lock before either
    // may write: only the lock (and the read after it) keeps the second from keeping its own.
    const blocker = await admin.connect()
    await blocker.query('BEGIN')
    for (const kind of KINDS) await blocker.query('SELECT pg_advisory_xact_lock($1::bigint)', [KEPT_SECRET_LOCK_KEYS[kind].toString()])
    const logs = new LogCapture()
    const starts = [one, two].map(async (storage) => ({
      notification: await loadSigningSecrets(storage, undefined, logs.logger),
      link: await loadLinkSecret(storage, undefined, logs.logger)
    }))
    await lockWaiters(admin, 2)
    await blocker.query('COMMIT')
    blocker.release()
    const [a, b] = await Promise.all(starts)
    t.same(a, b, 'the same secrets on both')
    t.equal(a!.notification.source, 'generated')
    for (const table of ['notification_secrets', 'download_link_secrets']) {
      t.same((await admin.query(`SELECT count(*) AS n FROM ${table}`)).rows, [{ n: 1 }], `one row in ${table}`)
    }
    t.equal(logs.lines.filter((line) => typeof line.notify_secret_sha256 === 'string').length, 1, 'only the winner logs a generation')
    t.equal(logs.lines.filter((line) => typeof line.download_link_secret_sha256 === 'string').length, 1)
  })

  t.test('postgres: a caller\'s first use on two replicas at once gives both the same secret', async (t) => {
    const url = await pg.freshUrl()
    const logs = new LogCapture()
    const [one, two] = [openTestPool(t, url), openTestPool(t, url)].map((pool) => new CallerSecrets(new PostgresSecretsStorage(pool), logs.logger))
    const [a, b] = await Promise.all([one!.of('team-a'), two!.of('team-a')])
    t.same(a, b)
    t.equal(a!.length, 1)
    t.equal(logs.lines.filter((line) => line.msg === 'notification signing secret generated').length, 1)
  })

  t.test('postgres: a rotation on one replica signs the other\'s next message', async (t) => {
    const url = await pg.freshUrl()
    const logs = new LogCapture()
    const [one, two] = [openTestPool(t, url), openTestPool(t, url)].map((pool) => new CallerSecrets(new PostgresSecretsStorage(pool), logs.logger))
    const [before] = await two!.signing('team-a')
    const [rotated] = await one!.rotate('team-a')
    t.not(rotated!.secret, before)
    t.same(await two!.signing('team-a'), [rotated!.secret, before], 'the other replica signs with the new one at once, the old beside it')
  })

  t.test('postgres: two replicas rotating one caller at once both rotate, one after the other', async (t) => {
    const url = await pg.freshUrl()
    const logs = new LogCapture()
    const clock = () => Date.parse(AT)
    const [one, two] = [openTestPool(t, url), openTestPool(t, url)].map((pool) => new CallerSecrets(new PostgresSecretsStorage(pool), logs.logger, clock))
    const [first] = await one!.of('team-a')
    const admin = openTestPool(t, url)
    // A third session holds the current secret's row, so both rotations are under way when it lets go: without the
    // caller's lock the second's INSERT would meet the first's new secret on the one-current index (23505).
    const blocker = await admin.connect()
    await blocker.query('BEGIN')
    await blocker.query('SELECT 1 FROM caller_secrets WHERE caller = $1 AND expires_at IS NULL FOR UPDATE', ['team-a'])
    const rotations = [one!.rotate('team-a'), two!.rotate('team-a')]
    await lockWaiters(admin, 2)
    await blocker.query('COMMIT')
    blocker.release()
    const answers = await Promise.all(rotations)
    const final = await one!.of('team-a')
    t.equal(final.length, 3, 'a current secret and the two it replaced')
    t.same(final.filter((secret) => secret.expires_at === null).length, 1, 'one current')
    t.equal(final.at(-1)!.secret, first!.secret, 'the first signs on')
    t.ok(final.slice(1).every((secret) => secret.expires_at === new Date(clock() + ROTATION_GRACE_MS).toISOString()), 'each retired one for the grace')
    t.ok(answers.some((answer) => answer[0]!.secret === final[0]!.secret), 'the last rotation\'s answer is what is in force')
  })
}
