// The daily submit quota per caller: SUBMIT_DAILY_QUOTA, overridden per caller by CALLER_QUOTAS; days are UTC.
import { errors } from '../errors.js'
import type { TaskQueries } from './task-store.js'

export type QuotaStatus = {
  caller: string
  /** Submits allowed per UTC day; null: no quota. */
  limit: number | null
  used: number
  remaining: number | null
  /** When the count starts again (the next UTC midnight). */
  reset_at: string
}

const DAY_MS = 86_400_000

export class SubmitQuota {
  constructor (
    private readonly repo: Pick<TaskQueries, 'submittedSince'>,
    private readonly daily: number,
    private readonly perCaller: Readonly<Record<string, number>>
  ) {}

  /** The caller's daily limit; 0 (the default, or a caller's own 0) means none. */
  limitOf (caller: string): number | null {
    const limit = Object.hasOwn(this.perCaller, caller) ? this.perCaller[caller]! : this.daily
    return limit > 0 ? limit : null
  }

  async status (caller: string, now: number = Date.now()): Promise<QuotaStatus> {
    const dayStart = Math.floor(now / DAY_MS) * DAY_MS
    const limit = this.limitOf(caller)
    const used = await this.repo.submittedSince(caller, new Date(dayStart).toISOString())
    return { caller, limit, used, remaining: limit === null ? null : Math.max(0, limit - used), reset_at: new Date(dayStart + DAY_MS).toISOString() }
  }

  /** Throws 429 quota_exceeded when one more submit would pass the caller's quota. */
  async check (caller: string, now: number = Date.now()): Promise<void> {
    if (this.limitOf(caller) === null) return
    const status = await this.status(caller, now)
    if (status.remaining === 0) throw errors.quotaExceeded(status.limit!, status.used, status.reset_at, Math.max(1, Math.ceil((Date.parse(status.reset_at) - now) / 1000)))
  }
}
