-- Callers are isolated: their task lists and deliveries are read by caller, and each caller signs with its own secret.

-- A caller's tasks, newest first, with or without a status filter: a page costs its own rows, not a scan of everyone's.
CREATE INDEX tasks_of_caller_by_seq ON tasks (caller, seq);
CREATE INDEX tasks_of_caller_by_status ON tasks (caller, status, seq);

-- Whose task a delivery is about, copied from the task when the delivery is written (a task's caller never changes),
-- so that a caller's deliveries and dead letters are listed from an index too.
ALTER TABLE notification_deliveries ADD COLUMN caller TEXT NOT NULL DEFAULT '';
UPDATE notification_deliveries SET caller = (SELECT t.caller FROM tasks t WHERE t.seq = notification_deliveries.task_seq);
CREATE INDEX notification_deliveries_of_caller ON notification_deliveries (caller, seq);
CREATE INDEX notification_deliveries_of_caller_by_state ON notification_deliveries (caller, state, seq);

-- Each caller's Standard Webhooks secrets for its tasks' notify_url. The current one has expires_at NULL; a rotated-out
-- one keeps signing beside it until expires_at.
CREATE TABLE caller_secrets (
  seq        INTEGER PRIMARY KEY,
  caller     TEXT    NOT NULL,
  secret     TEXT    NOT NULL,                        -- whsec_<base64>
  created_at TEXT    NOT NULL,
  expires_at TEXT                                     -- NULL: the current secret
) STRICT;

CREATE INDEX caller_secrets_of_caller ON caller_secrets (caller, seq);
-- At most one current secret per caller, whatever two requests do at once.
CREATE UNIQUE INDEX caller_secrets_one_current ON caller_secrets (caller) WHERE expires_at IS NULL;
