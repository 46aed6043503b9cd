-- The durable submit queue: status 'queued' (before 'submitting'), what a queued task needs to be sent after a restart,
-- and the indexes the dispatcher, the per-caller limits and the daily quota read.
-- SQLite cannot change a CHECK constraint in place, so tasks and task_counts are rebuilt (SQLite's documented
-- twelve-step procedure; the migration runner turns foreign keys off around migrations, so dropping the old tasks
-- table does not cascade into task_events, idempotency_keys or notification_deliveries). Every column, index and
-- trigger of the old tables is recreated below, and every row copied as it was.

CREATE TABLE tasks_new (
  seq                 INTEGER PRIMARY KEY,
  id                  TEXT    NOT NULL UNIQUE,
  provider            TEXT    NOT NULL DEFAULT 'minimax',
  task_id             TEXT    UNIQUE,
  model               TEXT    NOT NULL,
  status              TEXT    NOT NULL CHECK (status IN ('queued', 'submitting', 'processing', 'success', 'failed')),
  provider_status     TEXT,
  file_id             TEXT,
  error_code          TEXT,
  error_message       TEXT,
  prompt              TEXT,
  prompt_optimizer    INTEGER CHECK (prompt_optimizer IN (0, 1)),
  image_ref           TEXT    NOT NULL,
  metadata            TEXT,
  callback_token_hash BLOB    NOT NULL,
  caller              TEXT    NOT NULL,
  created_at          TEXT    NOT NULL,
  updated_at          TEXT    NOT NULL,
  next_poll_at        TEXT,
  poll_attempts       INTEGER NOT NULL DEFAULT 0,
  last_news_at        TEXT,
  video_url           TEXT,
  video_expires_at    TEXT,
  video_width         INTEGER,
  video_height        INTEGER,
  archive_state       TEXT CHECK (archive_state IN ('pending', 'stored', 'failed')),
  archive_path        TEXT,
  archive_bytes       INTEGER,
  archive_sha256      TEXT,
  archive_attempts    INTEGER NOT NULL DEFAULT 0,
  archive_next_at     TEXT,
  notify_url          TEXT,
  error_provisional   INTEGER NOT NULL DEFAULT 0 CHECK (error_provisional IN (0, 1)),
  -- While queued: the create request as the provider will get it (the image itself, which image_ref does not keep)
  -- and the callback token, as JSON; cleared when the create is sent, so the image is kept only while it waits.
  queued_request      TEXT,
  -- When the task entered the queue (NULL: it was sent at once); QUEUE_MAX_WAIT_MS and the time-in-queue metric count from it.
  queued_at           TEXT,
  -- When the create was sent (NULL on rows older than the queue: their created_at is that time). The reconciler's
  -- submit and finish deadlines count from it, so time spent queued is not held against the provider.
  sent_at             TEXT
) STRICT;

INSERT INTO tasks_new (seq, id, provider, task_id, model, status, provider_status, file_id, error_code, error_message, prompt,
  prompt_optimizer, image_ref, metadata, callback_token_hash, caller, created_at, updated_at, next_poll_at, poll_attempts,
  last_news_at, video_url, video_expires_at, video_width, video_height, archive_state, archive_path, archive_bytes,
  archive_sha256, archive_attempts, archive_next_at, notify_url, error_provisional)
SELECT seq, id, provider, task_id, model, status, provider_status, file_id, error_code, error_message, prompt,
  prompt_optimizer, image_ref, metadata, callback_token_hash, caller, created_at, updated_at, next_poll_at, poll_attempts,
  last_news_at, video_url, video_expires_at, video_width, video_height, archive_state, archive_path, archive_bytes,
  archive_sha256, archive_attempts, archive_next_at, notify_url, error_provisional
FROM tasks;

DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;

CREATE INDEX tasks_by_status ON tasks (status, seq);
CREATE INDEX tasks_due_for_poll ON tasks (next_poll_at) WHERE next_poll_at IS NOT NULL;
CREATE INDEX tasks_due_for_archive ON tasks (archive_next_at) WHERE archive_state = 'pending';
CREATE INDEX tasks_terminal_by_age ON tasks (updated_at) WHERE status IN ('success', 'failed');
CREATE INDEX tasks_of_caller_by_seq ON tasks (caller, seq);
CREATE INDEX tasks_of_caller_by_status ON tasks (caller, status, seq);
-- The dispatcher's question: each caller's oldest queued task for a provider (round-robin between callers, FIFO within one).
CREATE INDEX tasks_queued ON tasks (provider, caller, seq) WHERE status = 'queued';
-- The daily quota's question: how many tasks a caller submitted since midnight UTC.
CREATE INDEX tasks_by_caller_created ON tasks (caller, created_at);
-- The dashboard's 24-hour overview (migration 008): dropped with the old table, so made again.
CREATE INDEX tasks_by_created ON tasks (created_at);

CREATE TABLE task_counts_new (
  status TEXT    PRIMARY KEY CHECK (status IN ('queued', 'submitting', 'processing', 'success', 'failed')),
  n      INTEGER NOT NULL CHECK (n >= 0)
) STRICT, WITHOUT ROWID;

INSERT INTO task_counts_new (status, n) SELECT status, n FROM task_counts;
INSERT INTO task_counts_new (status, n) VALUES ('queued', 0);
DROP TABLE task_counts;
ALTER TABLE task_counts_new RENAME TO task_counts;

-- The triggers went with the old tasks table; the same three, unchanged.
CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
  UPDATE task_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON tasks WHEN OLD.status <> NEW.status BEGIN
  UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
  UPDATE task_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
  UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
END;
