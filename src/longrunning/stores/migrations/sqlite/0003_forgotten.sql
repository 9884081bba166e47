-- Operations a client deleted while they ran (Google's DeleteOperation does not cancel): hidden
-- from every read, purged once they end. The partial index finds the few such rows for purging.
ALTER TABLE operations ADD COLUMN forgotten_at INTEGER;
CREATE INDEX operations_forgotten ON operations (id) WHERE forgotten_at IS NOT NULL;
