-- The operations table and the indexes its queries use (see stores/postgres.py).
--
-- Text that is compared or ordered uses the "C" collation: byte order, as Python and SQLite
-- order strings, whatever the database's default. Payloads are `json` (kept verbatim), labels are
-- `jsonb` (looked up by key).
--
-- Bloat: progress, metadata, lease and version writes touch no indexed column, so they are HOT
-- updates, pruned within the page without VACUUM; fillfactor leaves the room they need. Keep it
-- so: never index update_time, progress_*, metadata, lease_* or version. (docs/howto/scale-out.md)

CREATE TABLE operations (
    id                   text COLLATE "C" NOT NULL PRIMARY KEY,
    parent               text COLLATE "C" NOT NULL,
    kind                 text COLLATE "C" NOT NULL,
    state                text COLLATE "C" NOT NULL
        CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    create_time          timestamptz      NOT NULL,
    update_time          timestamptz      NOT NULL,
    cancellable          boolean          NOT NULL,
    cancel_requested_at  timestamptz,
    cancel_outcome       text COLLATE "C",
    progress_percent     double precision NOT NULL,
    progress_phase       text COLLATE "C",
    progress_eta         timestamptz,
    metadata             json             NOT NULL,
    request              json             NOT NULL,
    result               json             NOT NULL,
    error_code           integer,
    error_message        text COLLATE "C",
    error_details        json,
    error_severity       bigint,
    error_is_user_error  boolean,
    start_time           timestamptz,
    end_time             timestamptz,
    attempt              integer          NOT NULL,
    max_attempts         integer          NOT NULL,
    idempotent           boolean          NOT NULL,
    labels               jsonb            NOT NULL,
    request_id           text COLLATE "C",
    request_hash         text COLLATE "C",
    target               text COLLATE "C",
    queue                text COLLATE "C" NOT NULL,
    deadline             timestamptz,
    not_before           timestamptz,
    lease_owner          text COLLATE "C",
    lease_epoch          bigint           NOT NULL,
    lease_expires_at     timestamptz,
    version              bigint           NOT NULL
) WITH (fillfactor = 70);

-- Listing: keyset pages over (create_time, id), across every parent, within one, by state or kind.
CREATE INDEX operations_by_create_time ON operations (create_time, id);
CREATE INDEX operations_by_parent ON operations (parent, create_time, id);
CREATE INDEX operations_by_state ON operations (state, create_time, id);
CREATE INDEX operations_by_kind ON operations (kind, create_time, id);

-- Claiming: the oldest pending operation first.
CREATE INDEX operations_pending ON operations (create_time, id) WHERE state = 'PENDING';

-- Lease recovery reads the running operations and checks their leases (not indexed: renewals
-- must stay HOT); pending deadlines are fixed at start.
CREATE INDEX operations_running ON operations (id) WHERE state = 'RUNNING';
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

-- Every committed change wakes the listening nodes (stores/postgres_listen.py): workers claim new
-- work and see cancels within milliseconds. Per row, so that a statement that changed nothing
-- (a lost compare-and-set) wakes nobody; the notifications of one transaction are merged.
CREATE FUNCTION longrunning_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('longrunning_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER operations_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON operations
    FOR EACH ROW EXECUTE FUNCTION longrunning_notify_change();
