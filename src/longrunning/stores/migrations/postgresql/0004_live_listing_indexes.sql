-- Listing live operations (`done = false`, the commonest history filter) newest first, alone or
-- with a label or a kind: walk only the live rows in order, instead of every live row sorted
-- afterwards (issue 7, W5). Partial, so it holds only PENDING and RUNNING rows; the filter
-- translator writes `state IN ('PENDING', 'RUNNING')`, which implies its predicate. Unlike
-- SQLite, no (kind, create_time, id) twin: before autovacuum has analyzed a freshly filled
-- table, PostgreSQL would pick it for the claim query and sort every pending row of the kind
-- (12 ms a claim at 5,000 pending), where operations_pending walks in order and stops at once.
CREATE INDEX operations_live ON operations (create_time, id)
    WHERE state IN ('PENDING', 'RUNNING');
