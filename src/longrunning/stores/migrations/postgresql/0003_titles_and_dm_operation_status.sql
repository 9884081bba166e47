-- Operation titles ("CREATE DATABASE"), and the dm_operation_status view: the operations as
-- Azure SQL's sys.dm_operation_status shows them, for operators with psql.
-- Its state codes: 0 pending, 1 in progress, 2 completed, 3 failed, 4 cancel in progress,
-- 5 cancelled. Times are UTC timestamps. A database operation's target is
-- servers/{s}/databases/{d}: major_resource_id is then the database's name and
-- minor_resource_id its server's.
ALTER TABLE operations ADD COLUMN title text;

CREATE VIEW dm_operation_status AS
SELECT
    id AS session_activity_id,
    0 AS resource_type,
    'Database'::text AS resource_type_desc,
    coalesce(substring(target FROM '^servers/[^/]+/databases/(.+)$'), target, '')
        AS major_resource_id,
    coalesce(substring(target FROM '^servers/([^/]+)/databases/.+$'), '') AS minor_resource_id,
    coalesce(title, kind) AS operation,
    CASE state
        WHEN 'PENDING' THEN 0
        WHEN 'RUNNING' THEN CASE WHEN cancel_requested_at IS NULL THEN 1 ELSE 4 END
        WHEN 'SUCCEEDED' THEN 2
        WHEN 'FAILED' THEN 3
        ELSE 5 END AS state,
    CASE state
        WHEN 'PENDING' THEN 'PENDING'
        WHEN 'RUNNING' THEN CASE WHEN cancel_requested_at IS NULL
                                 THEN 'IN_PROGRESS' ELSE 'CANCEL_IN_PROGRESS' END
        WHEN 'SUCCEEDED' THEN 'COMPLETED'
        WHEN 'FAILED' THEN 'FAILED'
        ELSE 'CANCELLED' END AS state_desc,
    CASE WHEN state = 'SUCCEEDED' THEN 100 ELSE floor(progress_percent)::integer END
        AS percent_complete,
    coalesce(error_code, 0) AS error_code,
    error_message AS error_desc,
    coalesce(error_severity, 0) AS error_severity,
    0 AS error_state,
    create_time AT TIME ZONE 'UTC' AS start_time,
    update_time AT TIME ZONE 'UTC' AS last_modify_time,
    NULL::integer AS phase_code,
    progress_phase AS phase_desc,
    NULL::text AS phase_info
FROM operations
WHERE forgotten_at IS NULL;
