// The signing secrets on PostgreSQL: the statements of ../kept-secrets-repository.ts and ../caller-secrets-repository.ts,
// named so each connection prepares them once. Writes that decide from a read take an advisory lock first, so two
// replicas doing the same at once go one after the other and the second sees what the first committed.
import type pg from 'pg'
import type { CallerSecretRow } from '../caller-secrets-repository.js'
import type { KeptSecretKind, SecretsStorage } from '../../services/secrets-storage.js'
import { inTransaction } from './transaction.js'

// Advisory lock keys (64-bit, ASCII of 's2v-nsec' and 's2v-lsec'), held to the end of the generating transaction.
// Distinct from the migrator's ('s2v-migr', migrate.ts) and the count fold's ('s2v-fold', tasks-repository.ts).
export const KEPT_SECRET_LOCK_KEYS: Record<KeptSecretKind, bigint> = { notification: 0x7332762d6e736563n, download_link: 0x7332762d6c736563n }
// The first half of a caller's two-key advisory lock (ASCII 's2vc'); the second is hashtext(caller). PostgreSQL keeps
// two-key locks apart from one-key ones, so these never meet the keys above.
const CALLER_SECRET_LOCK_SPACE = 0x73327663

const kept = (table: string) => ({
  latest: `SELECT secret FROM ${table} ORDER BY seq DESC LIMIT 1`,
  insert: `INSERT INTO ${table} (secret, created_at) VALUES ($1, $2)`
})

const statements = {
  notification: kept('notification_secrets'),
  download_link: kept('download_link_secrets'),
  lockKept: 'SELECT pg_advisory_xact_lock($1::bigint)',
  lockCaller: 'SELECT pg_advisory_xact_lock($1::integer, hashtext($2))',
  signing: 'SELECT * FROM caller_secrets WHERE caller = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY seq DESC',
  // The unique index caller_secrets_one_current lets only one current secret in, whoever writes it.
  addCurrent: 'INSERT INTO caller_secrets (caller, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (caller) WHERE expires_at IS NULL DO NOTHING',
  insert: 'INSERT INTO caller_secrets (caller, secret, created_at) VALUES ($1, $2, $3)',
  retireCurrent: 'UPDATE caller_secrets SET expires_at = $2 WHERE caller = $1 AND expires_at IS NULL',
  purgeExpired: 'DELETE FROM caller_secrets WHERE caller = $1 AND expires_at IS NOT NULL AND expires_at <= $2'
} as const

type Queryable = Pick<pg.ClientBase, 'query'>

async function run<R extends pg.QueryResultRow> (db: Queryable, name: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
  return await db.query<R>({ name: `secrets.${name}`, text, values })
}

export class PostgresSecretsStorage implements SecretsStorage {
  constructor (private readonly pool: pg.Pool) {}

  async keep (kind: KeptSecretKind, candidate: string, at: string): Promise<{ secret: string, generated: boolean }> {
    // Every start but the first finds it without a lock.
    const found = await this.#latest(this.pool, kind)
    if (found !== undefined) return { secret: found, generated: false }
    return await inTransaction(this.pool, async (client) => {
      await run(client, 'lockKept', statements.lockKept, [KEPT_SECRET_LOCK_KEYS[kind].toString()])
      // READ COMMITTED: this statement sees what a replica that held the lock before us committed.
      const won = await this.#latest(client, kind)
      if (won !== undefined) return { secret: won, generated: false }
      await run(client, `${kind}.insert`, statements[kind].insert, [candidate, at])
      return { secret: candidate, generated: true }
    })
  }

  async callerSigning (caller: string, now: string): Promise<CallerSecretRow[]> {
    return (await run<CallerSecretRow>(this.pool, 'signing', statements.signing, [caller, now])).rows
  }

  async addCallerSecret (caller: string, secret: string, at: string): Promise<boolean> {
    return await inTransaction(this.pool, async (client) => {
      // The caller's lock, as a rotation takes it: a first use and a rotation at once do not meet on the unique index.
      await run(client, 'lockCaller', statements.lockCaller, [CALLER_SECRET_LOCK_SPACE, caller])
      return ((await run(client, 'addCurrent', statements.addCurrent, [caller, secret, at])).rowCount ?? 0) === 1
    })
  }

  async rotateCallerSecret (caller: string, secret: string, at: string, retiredUntil: string): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      // Without it, a second rotation's UPDATE would miss the first's new secret (not in its snapshot) and its INSERT
      // would then break the one-current index; after the lock, each statement sees the first's commit.
      await run(client, 'lockCaller', statements.lockCaller, [CALLER_SECRET_LOCK_SPACE, caller])
      await run(client, 'purgeExpired', statements.purgeExpired, [caller, at])
      await run(client, 'retireCurrent', statements.retireCurrent, [caller, retiredUntil])
      await run(client, 'insert', statements.insert, [caller, secret, at])
    })
  }

  async #latest (db: Queryable, kind: KeptSecretKind): Promise<string | undefined> {
    return (await run<{ secret: string }>(db, `${kind}.latest`, statements[kind].latest, [])).rows[0]?.secret
  }
}
