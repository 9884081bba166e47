-- Operations a client deleted while they ran (Google's DeleteOperation does not cancel): hidden
-- from every read, purged once they end. The column changes once, when an operation is
-- forgotten, so the partial index costs no HOT update; it finds the few such rows for purging.
ALTER TABLE operations ADD COLUMN forgotten_at timestamptz;
CREATE INDEX operations_forgotten ON operations (id) WHERE forgotten_at IS NOT NULL;
