// The deliveries storage on SQLite: the repository's statements, each transaction synchronous inside (no await).
import type { DeliveriesRepository, DeliveryRow } from './deliveries-repository.js'
import type { AttemptOutcome, DeliveriesStorage } from '../services/notifications/deliveries-storage.js'
import { leaseEnd } from '../services/task-storage.js'
import type { NewAttempt } from './deliveries-repository.js'

export class SqliteDeliveriesStorage implements DeliveriesStorage {
  constructor (readonly repo: DeliveriesRepository) {}

  async byId (id: string) { return this.repo.byId(id) }
  async attemptsOf (deliverySeq: number) { return this.repo.attemptsOf(deliverySeq) }
  async list (filter: Parameters<DeliveriesRepository['list']>[0]) { return this.repo.list(filter) }
  async claimDue (now: string, limit: number, leaseMs: number) { return this.repo.claimDue(now, limit, leaseEnd(now, leaseMs)) }
  async nextDueAt () { return this.repo.nextDueAt() }
  async releaseClaim (row: DeliveryRow, at: string) { this.repo.releaseClaim(row.seq, row.next_attempt_at ?? '', at) }
  async superseded (seq: number) { return this.repo.superseded(seq) }
  async isGone (url: string) { return this.repo.isGone(url) }
  async releaseOrphans (at: string) { return this.repo.releaseOrphans(at) }

  async recordAttempt (row: DeliveryRow, round: number, attempt: NewAttempt, outcome: AttemptOutcome): Promise<boolean> {
    const { repo } = this
    return repo.transaction(() => {
      if (!repo.bySeq(row.seq)) return false
      repo.insertAttempt(attempt)
      const at = attempt.at
      switch (outcome.kind) {
        case 'delivered':
          repo.saveDelivered(row.seq, round, at)
          repo.releaseNext(row.task_seq, row.url, at)
          break
        case 'gone':
          repo.saveDead(row.seq, round, 'gone', at)
          repo.markGone(row.url, at)
          repo.killPendingForUrl(row.url, at)
          break
        case 'dead':
          repo.saveDead(row.seq, round, outcome.reason, at)
          repo.releaseNext(row.task_seq, row.url, at)
          break
        case 'retry':
          repo.saveRetry(row.seq, round, outcome.nextAttemptAt, at)
      }
      return true
    })
  }

  async kill (row: DeliveryRow, reason: 'url_gone' | 'superseded', at: string): Promise<void> {
    this.repo.transaction(() => {
      this.repo.saveDead(row.seq, row.round_attempts, reason, at)
      this.repo.releaseNext(row.task_seq, row.url, at)
    })
  }

  async replay (seq: number, url: string, at: string): Promise<boolean> {
    return this.repo.transaction(() => {
      const replayed = this.repo.replay(seq, at)
      // An admin replaying to a URL that answered 410 says it is back.
      if (replayed) this.repo.clearGone(url)
      return replayed
    })
  }

  async replayRange (since: string, until: string, caller: string | undefined, at: string): Promise<{ retried: number, skipped: number }> {
    return this.repo.transaction(() => {
      let retried = 0
      let skipped = 0
      for (const row of this.repo.failedInRange(since, until, caller)) {
        if (row.superseded) {
          skipped += 1
        } else if (this.repo.replay(row.seq, at)) {
          this.repo.clearGone(row.url)
          retried += 1
        }
      }
      return { retried, skipped }
    })
  }
}
