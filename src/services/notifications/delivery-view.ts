// Turns delivery rows and their attempts into what the deliveries API answers.
import type { AttemptRow, DeliveryListRow } from '../../db/deliveries-repository.js'
import type { Delivery } from '../../schemas/deliveries.js'

export function deliveryView (row: DeliveryListRow, attempts: AttemptRow[]): Delivery {
  return {
    id: row.id,
    task: row.task_public_id,
    url: row.url,
    status: row.status,
    state: row.state,
    next_attempt_at: row.next_attempt_at,
    dead_reason: row.dead_reason,
    created_at: row.created_at,
    updated_at: row.updated_at,
    delivered_at: row.delivered_at,
    attempts: attempts.map((attempt) => ({ at: attempt.at, status_code: attempt.status_code, latency_ms: attempt.latency_ms, error: attempt.error }))
  }
}
