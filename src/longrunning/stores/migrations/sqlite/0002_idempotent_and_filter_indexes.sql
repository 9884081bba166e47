-- Whether a lost worker's operation may run again: decided at start from its kind and stored,
-- so every node's reaper decides alike, whichever handler modules that node loaded.
ALTER TABLE operations ADD COLUMN idempotent INTEGER NOT NULL DEFAULT 0;

-- Selective filters on state or kind read only their rows, newest or oldest first.
CREATE INDEX operations_by_state ON operations (state, create_time, id);
CREATE INDEX operations_by_kind ON operations (kind, create_time, id);
