-- The operations table and the indexes its queries use (see stores/sqlite.py).
-- Timestamps are INTEGER microseconds since the epoch; JSON columns hold text.

CREATE TABLE operations (
    id                   TEXT    NOT NULL PRIMARY KEY,
    parent               TEXT    NOT NULL,
    kind                 TEXT    NOT NULL,
    state                TEXT    NOT NULL
        CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    create_time          INTEGER NOT NULL,
    update_time          INTEGER NOT NULL,
    cancellable          INTEGER NOT NULL,
    cancel_requested_at  INTEGER,
    cancel_outcome       TEXT,
    progress_percent     REAL    NOT NULL,
    progress_phase       TEXT,
    progress_eta         INTEGER,
    metadata             TEXT    NOT NULL,
    request              TEXT    NOT NULL,
    result               TEXT    NOT NULL,
    error_code           INTEGER,
    error_message        TEXT,
    error_details        TEXT,
    error_severity       INTEGER,
    error_is_user_error  INTEGER,
    start_time           INTEGER,
    end_time             INTEGER,
    attempt              INTEGER NOT NULL,
    max_attempts         INTEGER NOT NULL,
    labels               TEXT    NOT NULL,
    request_id           TEXT,
    request_hash         TEXT,
    target               TEXT,
    queue                TEXT    NOT NULL,
    deadline             INTEGER,
    not_before           INTEGER,
    lease_owner          TEXT,
    lease_epoch          INTEGER NOT NULL,
    lease_expires_at     INTEGER,
    version              INTEGER NOT NULL
) STRICT;

-- Listing: keyset pages over (create_time, id), across every parent or within one.
CREATE INDEX operations_by_create_time ON operations (create_time, id);
CREATE INDEX operations_by_parent ON operations (parent, create_time, id);

-- Claiming: the oldest pending operation first.
CREATE INDEX operations_pending ON operations (create_time, id) WHERE state = 'PENDING';

-- Lease recovery and pending deadlines.
CREATE INDEX operations_running_leases ON operations (lease_expires_at, id)
    WHERE state = 'RUNNING';
CREATE INDEX operations_pending_deadlines ON operations (deadline, id)
    WHERE state = 'PENDING' AND deadline IS NOT NULL;

-- Purging finished operations by age.
CREATE INDEX operations_finished ON operations (end_time, id)
    WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED');

-- Is a target busy? (exclusive inserts, and claims skipping targets with a running operation)
CREATE INDEX operations_active_targets ON operations (target, state)
    WHERE target IS NOT NULL AND state IN ('PENDING', 'RUNNING');

-- Idempotent creation: one operation per (parent, request id).
CREATE UNIQUE INDEX operations_request_ids ON operations (parent, request_id)
    WHERE request_id IS NOT NULL;
