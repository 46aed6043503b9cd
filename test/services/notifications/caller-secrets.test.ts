// Callers' own signing secrets, on both engines: generated on first use, rotated with a grace, used to sign.
import t, { type Test } from 'tap'
import { secretsStorageOf } from '../../../src/plugins/secrets.js'
import { CallerSecrets, ROTATION_GRACE_MS, signerFor } from '../../../src/services/notifications/caller-secrets.js'
import { generateSecret } from '../../../src/services/notifications/signing.js'
import { Webhook } from 'standardwebhooks'
import { LogCapture } from '../../helper.js'
import { postgres, sqlite, type Engine } from '../../db/task-storage-engines.js'

// Started before any test is queued (see startPostgres).
const pg = await postgres(t)
const engines: Engine[] = pg ? [sqlite, pg] : [sqlite]

const HOUR = 60 * 60 * 1000

async function secretsAt (t: Test, engine: Engine) {
  const database = await engine.openDatabase(t)
  const clock = { now: Date.parse('2026-12-01T00:00:00.000Z') }
  const logs = new LogCapture()
  const secrets = new CallerSecrets(secretsStorageOf(database), logs.logger, () => clock.now)
  const kept = async (caller: string) => database.kind === 'sqlite'
    ? (database.db.prepare('SELECT COUNT(*) AS n FROM caller_secrets WHERE caller = ?').get(caller) as { n: number }).n
    : (await database.pool.query<{ n: number }>('SELECT COUNT(*) AS n FROM caller_secrets WHERE caller = $1', [caller])).rows[0]!.n
  return { secrets, clock, logs, kept }
}

for (const engine of engines) {
  t.test(`${engine.name}: a caller's secret is generated on first use, kept, and its own`, async (t) => {
    const { secrets, logs } = await secretsAt(t, engine)
    const [first, ...none] = await secrets.of('team-a')
    t.same(none, [])
    t.match(first, { secret: /^whsec_[A-Za-z0-9+/]{43}=$/, created_at: '2026-12-01T00:00:00.000Z', expires_at: null })
    t.same(await secrets.of('team-a'), [first], 'the same one next time')
    t.not((await secrets.of('team-b'))[0]!.secret, first!.secret, 'another caller has another')
    t.equal(logs.lines.filter((line) => line.msg === 'notification signing secret generated').length, 2)
    t.notOk(logs.raw.includes(first!.secret.slice(6)), 'no secret in the logs, only fingerprints')
  })

  t.test(`${engine.name}: after a rotation the old secret signs beside the new one for 24 h, then stops and is forgotten`, async (t) => {
    const { secrets, clock, kept } = await secretsAt(t, engine)
    const [old] = await secrets.of('team-a')
    const other = await secrets.of('team-b')
    clock.now += HOUR
    const rotated = await secrets.rotate('team-a')
    t.equal(rotated.length, 2)
    t.not(rotated[0]!.secret, old!.secret, 'a new current secret')
    t.same(rotated[0]!.expires_at, null)
    t.same(rotated[1], { ...old, expires_at: new Date(clock.now + ROTATION_GRACE_MS).toISOString() })
    t.same(await secrets.signing('team-a'), [rotated[0]!.secret, old!.secret], 'newest first')
    t.same(await secrets.of('team-b'), other, 'another caller\'s secret is untouched')

    clock.now += ROTATION_GRACE_MS - 1
    t.equal((await secrets.signing('team-a')).length, 2, 'still signing just before 24 h')
    clock.now += 1
    t.same(await secrets.signing('team-a'), [rotated[0]!.secret], 'not at 24 h')

    // Two rotations within the grace: each rotated-out secret keeps its own 24 h.
    const second = await secrets.rotate('team-a')
    clock.now += HOUR
    const third = await secrets.rotate('team-a')
    t.same(third.map(({ secret }) => secret), [third[0]!.secret, second[0]!.secret, rotated[0]!.secret])
    t.equal(await kept('team-a'), 3, 'the secret that expired was deleted at the rotation')
  })

  t.test(`${engine.name}: which secrets sign a message: the caller's for its notify_url, the operator's for NOTIFY_URL, NOTIFY_SECRET everywhere`, async (t) => {
    const { secrets } = await secretsAt(t, engine)
    const operator = generateSecret()
    const own = 'https://hooks.team-a.example/s2v'
    const global = 'https://ops.example/all'
    const signing = (everywhere: string[], globalUrl = global) =>
      signerFor({ callers: secrets, operator: everywhere.length ? everywhere : [operator], everywhere, globalUrl, notifyUrlOf: async () => own })
    const [a] = await secrets.signing('team-a')
    const [b] = await secrets.signing('team-b')
    const verifies = (signer: Awaited<ReturnType<ReturnType<typeof signerFor>>>, secret: string) => {
      const body = '{"status":"success"}'
      const headers = signer.headers('msg_x', new Date(), body)
      try { new Webhook(secret).verify(body, headers); return true } catch { return false }
    }
    const toOwn = await signing([])({ task_seq: 1, caller: 'team-a', url: own })
    t.ok(verifies(toOwn, a!), 'the task\'s caller verifies its own')
    t.notOk(verifies(toOwn, b!), 'another caller\'s secret does not verify it')
    t.notOk(verifies(toOwn, operator), 'nor the generated operator secret (every caller could read it before isolation)')
    const toGlobal = await signing([])({ task_seq: 1, caller: 'team-a', url: global })
    t.ok(verifies(toGlobal, operator))
    t.notOk(verifies(toGlobal, a!), 'the operator\'s NOTIFY_URL is not signed with a caller\'s secret')

    const shared = await signing([], own)({ task_seq: 1, caller: 'team-a', url: own })
    t.ok(verifies(shared, a!) && verifies(shared, operator), 'a notify_url that is also NOTIFY_URL gets one message both can verify')

    const configured = generateSecret()
    const both = await signing([configured])({ task_seq: 1, caller: 'team-a', url: own })
    t.ok(verifies(both, a!))
    t.ok(verifies(both, configured), 'NOTIFY_SECRET still signs every message')
    t.ok(verifies(await signing([configured])({ task_seq: 1, caller: 'team-a', url: global }), configured))
  })
}
