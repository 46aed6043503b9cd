-- Reconciliation (polling when pushes do not come), the result video, per-task notification URL.

-- When the reconciler should next ask the provider about this task (NULL: not scheduled, e.g. terminal).
ALTER TABLE tasks ADD COLUMN next_poll_at TEXT;
-- Consecutive polls that brought no news or failed: drives the per-task backoff.
ALTER TABLE tasks ADD COLUMN poll_attempts INTEGER NOT NULL DEFAULT 0;
-- The last time the provider told us anything about the task (submit answer, push or poll).
ALTER TABLE tasks ADD COLUMN last_news_at TEXT;

-- The provider's download link for the finished video, and when it stops working.
ALTER TABLE tasks ADD COLUMN video_url TEXT;
ALTER TABLE tasks ADD COLUMN video_expires_at TEXT;
ALTER TABLE tasks ADD COLUMN video_width INTEGER;
ALTER TABLE tasks ADD COLUMN video_height INTEGER;

-- Our own copy of the video (VIDEO_DIR): pending → stored | failed.
ALTER TABLE tasks ADD COLUMN archive_state TEXT CHECK (archive_state IN ('pending', 'stored', 'failed'));
ALTER TABLE tasks ADD COLUMN archive_path TEXT;
ALTER TABLE tasks ADD COLUMN archive_bytes INTEGER;
ALTER TABLE tasks ADD COLUMN archive_sha256 TEXT;
ALTER TABLE tasks ADD COLUMN archive_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN archive_next_at TEXT;

-- Where to tell the caller about status changes (issue 5's notifications), if anywhere.
ALTER TABLE tasks ADD COLUMN notify_url TEXT;

CREATE INDEX tasks_due_for_poll ON tasks (next_poll_at) WHERE next_poll_at IS NOT NULL;
CREATE INDEX tasks_due_for_archive ON tasks (archive_next_at) WHERE archive_state = 'pending';
CREATE INDEX tasks_terminal_by_age ON tasks (updated_at) WHERE status IN ('success', 'failed');
