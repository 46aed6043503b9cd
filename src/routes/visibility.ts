// Whose tasks a request may see: the one rule the dashboard's aggregate routes (stats, the task feed) apply.
import type { FastifyRequest } from 'fastify'

/**
 * The caller whose tasks the request may see, or undefined for every caller's. Until per-caller visibility
 * (ADMIN_TOKENS, request.isAdmin) is merged every token sees every task, as the lookups do; then it becomes
 * `request.isAdmin ? undefined : request.caller`.
 */
export function visibleCaller (_request: FastifyRequest): string | undefined {
  return undefined
}
