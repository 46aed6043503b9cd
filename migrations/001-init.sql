-- Tasks, their full status history, and idempotency keys for submits.
-- Times are ISO-8601 UTC strings with milliseconds, so they sort as text.

CREATE TABLE tasks (
  seq                 INTEGER PRIMARY KEY,            -- insertion order: newest first = seq DESC
  id                  TEXT    NOT NULL UNIQUE,        -- our id, handed to the caller
  provider            TEXT    NOT NULL DEFAULT 'minimax',
  task_id             TEXT    UNIQUE,                 -- the provider's id (18-digit string), bound by the submit answer or the first push
  model               TEXT    NOT NULL,
  status              TEXT    NOT NULL CHECK (status IN ('submitting', 'processing', 'success', 'failed')),
  provider_status     TEXT,                           -- the provider's last word, as it spelt it
  file_id             TEXT,
  error_code          TEXT,
  error_message       TEXT,
  prompt              TEXT,
  prompt_optimizer    INTEGER CHECK (prompt_optimizer IN (0, 1)),
  image_ref           TEXT    NOT NULL,               -- the image URL, or a digest of a data URL (the image itself is not kept)
  metadata            TEXT,                           -- caller's JSON object
  callback_token_hash BLOB    NOT NULL,               -- sha256 of the secret half of the callback token
  caller              TEXT    NOT NULL,               -- who submitted (hash of the bearer token, or 'anonymous')
  created_at          TEXT    NOT NULL,
  updated_at          TEXT    NOT NULL
) STRICT;

CREATE INDEX tasks_by_status ON tasks (status, seq);

CREATE TABLE task_events (
  seq             INTEGER PRIMARY KEY,
  task_seq        INTEGER NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
  at              TEXT    NOT NULL,
  source          TEXT    NOT NULL,                   -- submit | callback | poll
  status          TEXT,                               -- normalised status the event carried, if any
  provider_status TEXT,                               -- as the provider spelt it
  outcome         TEXT    NOT NULL,                   -- applied | duplicate | out_of_order | conflict | unrecognised | refused | unknown
  detail          TEXT                                -- JSON: file_id, base_resp, error, ...
) STRICT;

CREATE INDEX task_events_by_task ON task_events (task_seq, seq);

CREATE TABLE idempotency_keys (
  scope           TEXT    NOT NULL,                   -- the caller, so two callers never share a key
  key             TEXT    NOT NULL,
  request_hash    TEXT    NOT NULL,                   -- sha256 of the canonical request body
  task_seq        INTEGER NOT NULL REFERENCES tasks (seq) ON DELETE CASCADE,
  response_status INTEGER,                            -- NULL while the first request is in flight
  response_body   TEXT,
  created_at      TEXT    NOT NULL,
  PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;
