// The deliveries storage on PostgreSQL, shared by any number of replicas: reads and single-statement writes on the
// pool, the rest one transaction on one pooled connection. The claim (see the repository) is what keeps two replicas
// from sending one message twice.
import type pg from 'pg'
import { PostgresDeliveriesRepository } from './deliveries-repository.js'
import { inTransaction } from './transaction.js'
import type { DeliveryFilter, DeliveryRow, NewAttempt } from '../deliveries-repository.js'
import type { AttemptOutcome, DeliveriesStorage } from '../../services/notifications/deliveries-storage.js'
import { leaseEnd } from '../../services/task-storage.js'

export class PostgresDeliveriesStorage implements DeliveriesStorage {
  readonly #pool: pg.Pool
  readonly #repo = new PostgresDeliveriesRepository()

  constructor (pool: pg.Pool) {
    this.#pool = pool
  }

  byId (id: string) { return this.#repo.byId(this.#pool, id) }
  attemptsOf (deliverySeq: number) { return this.#repo.attemptsOf(this.#pool, deliverySeq) }
  list (filter: DeliveryFilter) { return this.#repo.list(this.#pool, filter) }
  claimDue (now: string, limit: number, leaseMs: number) { return this.#repo.claimDue(this.#pool, now, limit, leaseEnd(now, leaseMs)) }
  nextDueAt () { return this.#repo.nextDueAt(this.#pool) }
  releaseClaim (row: DeliveryRow, at: string) { return this.#repo.releaseClaim(this.#pool, row.seq, row.next_attempt_at ?? '', at) }
  superseded (seq: number) { return this.#repo.superseded(this.#pool, seq) }
  isGone (url: string) { return this.#repo.isGone(this.#pool, url) }
  // One statement: replicas starting at once each release what is orphaned then; releasing twice moves nothing more.
  releaseOrphans (at: string) { return this.#repo.releaseOrphans(this.#pool, at) }

  async recordAttempt (row: DeliveryRow, round: number, attempt: NewAttempt, outcome: AttemptOutcome): Promise<boolean> {
    const repo = this.#repo
    return inTransaction(this.#pool, async (client) => {
      // Locked: retention's purge of the task waits for the attempt to be recorded, or has removed the row already.
      if (!await repo.bySeqForUpdate(client, row.seq)) return false
      await repo.insertAttempt(client, attempt)
      const at = attempt.at
      switch (outcome.kind) {
        case 'delivered':
          await repo.saveDelivered(client, row.seq, round, at)
          await repo.releaseNext(client, row.task_seq, row.url, at)
          break
        case 'gone':
          await repo.saveDead(client, row.seq, round, 'gone', at)
          await repo.markGone(client, row.url, at)
          await repo.killPendingForUrl(client, row.url, at)
          break
        case 'dead':
          await repo.saveDead(client, row.seq, round, outcome.reason, at)
          await repo.releaseNext(client, row.task_seq, row.url, at)
          break
        case 'retry':
          await repo.saveRetry(client, row.seq, round, outcome.nextAttemptAt, at)
      }
      return true
    })
  }

  async kill (row: DeliveryRow, reason: 'url_gone' | 'superseded', at: string): Promise<void> {
    await inTransaction(this.#pool, async (client) => {
      await this.#repo.saveDead(client, row.seq, row.round_attempts, reason, at)
      await this.#repo.releaseNext(client, row.task_seq, row.url, at)
    })
  }

  async replay (seq: number, url: string, at: string): Promise<boolean> {
    return inTransaction(this.#pool, async (client) => {
      const replayed = await this.#repo.replay(client, seq, at)
      // An admin replaying to a URL that answered 410 says it is back.
      if (replayed) await this.#repo.clearGone(client, url)
      return replayed
    })
  }

  async replayRange (since: string, until: string, caller: string | undefined, at: string): Promise<{ retried: number, skipped: number }> {
    return inTransaction(this.#pool, async (client) => {
      let retried = 0
      let skipped = 0
      for (const row of await this.#repo.failedInRange(client, since, until, caller)) {
        if (row.superseded) {
          skipped += 1
        } else if (await this.#repo.replay(client, row.seq, at)) {
          // Oldest first, in one transaction: a later failed one of the same task and URL queues behind this one.
          await this.#repo.clearGone(client, row.url)
          retried += 1
        }
      }
      return { retried, skipped }
    })
  }
}
