// When to try a delivery again: the configured schedule with jitter, or the consumer's Retry-After.

// ±20 %: enough to spread a burst of retries to one consumer, little enough to keep the schedule recognisable.
const JITTER_FRACTION = 0.2

/** NOTIFY_RETRY_SCHEDULE: comma-separated delays in seconds (decimals allowed) after each failed attempt. */
export function parseSchedule (list: string): number[] {
  const delays = list.split(',').map((item) => item.trim()).filter(Boolean).map(Number)
  if (delays.length === 0 || delays.some((delay) => !Number.isFinite(delay) || delay < 0)) {
    throw new RangeError('a retry schedule is a comma-separated list of delays in seconds')
  }
  return delays.map((seconds) => Math.round(seconds * 1000))
}

/**
 * The pause before the next attempt after `failedAttempts` failures in a row (1 for the first failure), or null
 * when the schedule is used up and the delivery is dead.
 */
export function retryDelay (scheduleMs: number[], failedAttempts: number, random: () => number = Math.random): number | null {
  const base = scheduleMs[failedAttempts - 1]
  if (base === undefined) return null
  return Math.round(base * (1 - JITTER_FRACTION + 2 * JITTER_FRACTION * random()))
}
