-- Limits every replica counts against together; PostgreSQL only (SQLite runs in one process, which keeps them in
-- memory), listed as such in test/db/postgres/migrate.test.ts.

-- The providers' create pace and the reconciler's poll budgets (src/db/postgres/shared-limits.ts): one small JSON
-- state per key ('pacing:minimax', 'poll-budget:modellix', ...), locked FOR UPDATE for each step.
CREATE TABLE shared_limits (
  key   TEXT  PRIMARY KEY,
  state JSONB NOT NULL
);

-- Per-caller rate limits (@fastify/rate-limit's store, src/db/postgres/rate-limit-store.ts): requests counted in a
-- fixed window per route and caller. A timestamptz, not an iso_time: the window is computed by the server's clock in
-- the one statement that counts a request, and never compared with the text times of the tasks.
CREATE TABLE rate_limit_hits (
  key         TEXT        PRIMARY KEY,
  hits        INTEGER     NOT NULL,
  window_ends TIMESTAMPTZ NOT NULL
);
-- The sweep of windows that ended (and that nobody counted against since) reads this.
CREATE INDEX rate_limit_hits_by_end ON rate_limit_hits (window_ends);
