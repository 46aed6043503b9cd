-- Signed notifications to callers: the durable outbox, every attempt, URLs that answered 410, signing secrets.

-- One message to one URL about one status change. Written in the transaction that changes the status.
CREATE TABLE notification_deliveries (
  seq             INTEGER PRIMARY KEY,
  id              TEXT    NOT NULL UNIQUE,            -- msg_...: the webhook-id header, stable across retries
  task_seq        INTEGER NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
  url             TEXT    NOT NULL,
  status          TEXT    NOT NULL,                   -- the task status this message announces
  payload         TEXT    NOT NULL,                   -- the exact JSON body, frozen when the status changed
  state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
  round_attempts  INTEGER NOT NULL DEFAULT 0,         -- attempts since the delivery was created or last replayed
  next_attempt_at TEXT,                               -- while pending: not before this time; NULL while queued behind an
                                                      -- earlier pending delivery of the same task to the same URL
  dead_reason     TEXT,                               -- why it is failed: attempts_exhausted, gone, url_gone, notify_url_not_allowed
  created_at      TEXT    NOT NULL,
  updated_at      TEXT    NOT NULL,
  delivered_at    TEXT
) STRICT;

-- The worker's question: which pending deliveries are due, soonest first (queued ones wait outside the index).
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE state = 'pending' AND next_attempt_at IS NOT NULL;
-- The dead-letter list and its pages (newest first), and the bulk retry's time range.
CREATE INDEX notification_deliveries_by_state ON notification_deliveries (state, seq);
CREATE INDEX notification_deliveries_by_state_created ON notification_deliveries (state, created_at);
-- In-order delivery: the earlier deliveries of the same task to the same URL.
CREATE INDEX notification_deliveries_by_task_url ON notification_deliveries (task_seq, url, seq);

CREATE TABLE notification_attempts (
  seq          INTEGER PRIMARY KEY,
  delivery_seq INTEGER NOT NULL REFERENCES notification_deliveries (seq) ON DELETE CASCADE,
  at           TEXT    NOT NULL,
  status_code  INTEGER,                               -- NULL when no HTTP answer came (refused, timeout, reset)
  latency_ms   INTEGER NOT NULL,
  error        TEXT                                   -- NULL on success
) STRICT;

CREATE INDEX notification_attempts_by_delivery ON notification_attempts (delivery_seq, seq);

-- URLs that answered 410 Gone: nothing more is sent to them until an admin replays a delivery to them.
CREATE TABLE notification_gone_urls (
  url TEXT NOT NULL PRIMARY KEY,
  at  TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- The signing secret generated on first start when NOTIFY_SECRET is not configured.
CREATE TABLE notification_secrets (
  seq        INTEGER PRIMARY KEY,
  secret     TEXT    NOT NULL,                        -- whsec_<base64>
  created_at TEXT    NOT NULL
) STRICT;
