-- Signed download links of this service (GET /v1/files/download/:id) and MiniMax's GET /v1/files/retrieve.

-- The HMAC key generated on first start when DOWNLOAD_LINK_SECRET is not configured (the newest row signs).
CREATE TABLE download_link_secrets (
  seq        INTEGER PRIMARY KEY,
  secret     TEXT    NOT NULL,                        -- base64url of 32 random bytes
  created_at TEXT    NOT NULL
) STRICT;

-- GET /v1/files/retrieve?file_id= finds the task by the provider's file id.
CREATE INDEX tasks_by_file_id ON tasks (file_id) WHERE file_id IS NOT NULL;

-- The size of the provider's file, as its file look-up states it (MiniMax's bytes), for files/retrieve answers.
ALTER TABLE tasks ADD COLUMN video_bytes INTEGER;
