-- Listing live operations (`done = false`, the commonest history filter), newest first, alone or
-- with a kind: walk only the live rows in order instead of every row of a kind, or every live row
-- sorted afterwards (issue 7, W5). Partial, so they hold only PENDING and RUNNING rows; the
-- filter translator writes `state IN ('PENDING', 'RUNNING')` exactly as here, which is what
-- lets SQLite use them.
CREATE INDEX operations_live ON operations (create_time, id)
    WHERE state IN ('PENDING', 'RUNNING');
CREATE INDEX operations_live_by_kind ON operations (kind, create_time, id)
    WHERE state IN ('PENDING', 'RUNNING');
