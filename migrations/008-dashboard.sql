-- The dashboard's overview (GET /v1/stats) counts the last 24 hours of tasks by creation hour: without this index
-- each load would scan the whole table.
CREATE INDEX tasks_by_created ON tasks (created_at);
