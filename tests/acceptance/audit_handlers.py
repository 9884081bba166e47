"""A handler module that leaves an audit trail, loaded with `--handlers
tests.acceptance.audit_handlers`: every run of `audit.record` appends "<operation id> <pid>" to
the file named by LONGRUNNING_AUDIT_FILE, so a test can count who ran what, and how often.
"""

from __future__ import annotations

import os

from longrunning import JsonValue, OperationContext, operation_kind

AUDIT_FILE_ENV = "LONGRUNNING_AUDIT_FILE"


@operation_kind("audit.record")
async def record(ctx: OperationContext) -> JsonValue:
    """Append one line with one write on an O_APPEND file: lines of concurrent processes never
    interleave."""
    line = f"{ctx.operation_id} {os.getpid()}\n".encode()
    fd = os.open(os.environ[AUDIT_FILE_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return {"pid": os.getpid()}
