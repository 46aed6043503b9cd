-- Who decided a task's failure. 1: this service, when it stopped waiting (submit_outcome_unknown, timeout); such a
-- failure is provisional and the provider's own later verdict (push or poll) replaces it. 0: the provider (final).
ALTER TABLE tasks ADD COLUMN error_provisional INTEGER NOT NULL DEFAULT 0 CHECK (error_provisional IN (0, 1));

-- Until now only this service wrote these two codes, always as its own give-up.
UPDATE tasks SET error_provisional = 1 WHERE status = 'failed' AND error_code IN ('submit_outcome_unknown', 'timeout');
