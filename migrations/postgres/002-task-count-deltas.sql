-- task_counts becomes a ledger of deltas: the triggers append a row per change of status (+1 for the new status, -1
-- for the old) and update no shared row, so two replicas' transactions changing statuses in opposite directions no
-- longer wait on each other's count rows in opposite orders (001's design deadlocked them: 40P01 after a second).
-- A status's count is the sum of its rows (src/db/postgres/tasks-repository.ts, countsByStatus); a fold from time to
-- time (the same file, foldCounts) sums them back into one row per status, so the table stays small.
-- The five rows 001 inserted stay as the ledger's first entries: on a database with tasks they hold its counts.

-- Several rows per status from now on; a delta may be negative (a sum is never).
ALTER TABLE task_counts DROP CONSTRAINT task_counts_pkey;
ALTER TABLE task_counts DROP CONSTRAINT task_counts_n_check;
ALTER TABLE task_counts ALTER COLUMN status SET NOT NULL;

CREATE OR REPLACE FUNCTION task_counts_follow () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO task_counts (status, n) VALUES (NEW.status, 1);
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO task_counts (status, n) VALUES (OLD.status, -1), (NEW.status, 1);
  ELSE
    INSERT INTO task_counts (status, n) VALUES (OLD.status, -1);
  END IF;
  RETURN NULL;
END
$$;
