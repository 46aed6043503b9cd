-- The per-caller rate limits' counts are not worth a WAL flush each: every counted request (every lookup, push and
-- submit) wrote its row with a durable commit, an fsync per request, and a caller's lookups queued on that one row for
-- it. Unlogged, a count commits without waiting for the disk; what PostgreSQL's crash recovery then loses is the
-- counts of the current windows (the table comes back empty), which only means a fresh window for every caller.
ALTER TABLE rate_limit_hits SET UNLOGGED;
