"""One ARM request: its parsed path, the headers every ARM response carries, its JSON body, and
the 202 that starts an ARM asynchronous operation.

Shared by the ARM routes (rest.py, databases.py). HTTP only: shapes live in `codec`, names in
`paths`. Bodies are never logged (they may hold storage keys and passwords).
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from longrunning.core.operation import Operation
from longrunning.faces.azure_arm import codec
from longrunning.faces.azure_arm.codec import ArmError, Json
from longrunning.faces.azure_arm.paths import ArmPath, Scope


class Call:
    """One request: its parsed path, and the headers every ARM response carries."""

    def __init__(self, request: Request, path: ArmPath) -> None:
        self.request = request
        self.path = path
        self.scope: Scope = path.scope
        self.api_version = request.query_params.get("api-version", "")
        self.correlation = request.headers.get("x-ms-client-request-id") or str(uuid.uuid4())

    def reply(
        self, status: int, body: Json | None, *, request_id: str | None = None, **headers: str
    ) -> Response:
        return reply(status, body, request_id=request_id, correlation=self.correlation, **headers)

    def url(self, path: str, **query: str) -> str:
        """An absolute URL on this server (ARM clients follow links verbatim)."""
        base = str(self.request.base_url).rstrip("/")
        return f"{base}{path}?{urlencode({'api-version': self.api_version, **query})}"

    def accepted(self, op: Operation, retry_after: int) -> Response:
        """The 202 that starts an ARM asynchronous operation, named by the operation's own id."""
        base = f"{self.scope.prefix}/locations/{codec.LOCATION}"
        return self.reply(
            202,
            codec.accepted_body(op),
            request_id=op.id,
            Azure_AsyncOperation=self.url(f"{base}/databaseAzureAsyncOperation/{op.id}"),
            Location=self.url(f"{base}/databaseOperationResults/{op.id}"),
            Retry_After=str(retry_after),
        )

    async def json_body(self, max_bytes: int) -> Json:
        """The body as a JSON object; empty is `{}`."""
        try:
            raw = await self.request.body()
        except ClientDisconnect:
            raise ArmError(400, "InvalidRequestContent", "the request body was cut off") from None
        if len(raw) > max_bytes:
            raise ArmError(413, "RequestEntityTooLarge", "the request body is too large")
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArmError(400, "InvalidRequestContent", f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "the body must be a JSON object")
        return body


def reply(
    status: int,
    body: Json | None,
    *,
    request_id: str | None = None,
    correlation: str | None = None,
    **headers: str,
) -> Response:
    content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    all_headers = {
        "x-ms-request-id": request_id or str(uuid.uuid4()),
        "x-ms-correlation-request-id": correlation or str(uuid.uuid4()),
        **{name.replace("_", "-"): value for name, value in headers.items()},
    }
    media = "application/json; charset=utf-8" if body is not None else None
    return Response(content, status_code=status, headers=all_headers, media_type=media)
