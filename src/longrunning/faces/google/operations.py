"""The google.longrunning.Operations methods over OperationService, shared by the REST and gRPC
transports: names resolved, messages built, errors raised as LongrunningError for the transport
to encode. No HTTP, no gRPC here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from google.longrunning import operations_pb2

from longrunning.core.errors import OperationNotFound
from longrunning.core.operation import Operation
from longrunning.engine.service import MAX_WAIT_SECONDS, OperationService
from longrunning.faces.google import codec
from longrunning.faces.google.names import bad_name, operation_ref

DEFAULT_WAIT_SECONDS = 30.0
"""WaitOperation without a timeout waits this long (or until the call's deadline)."""


class GoogleOperations:
    def __init__(self, service: OperationService) -> None:
        self.service = service

    @contextlib.asynccontextmanager
    async def _named(self, name: str) -> AsyncIterator[Operation]:
        """The operation `name` means; NOT_FOUND, naming it as the client did, if it is not
        there under that name, now or by the end of the block (deleted meanwhile)."""
        ref = operation_ref(name)
        try:
            op = await self.service.get(ref.id)
            if not ref.covers(op.parent):
                raise OperationNotFound  # it exists, but not under that name
            yield op
        except OperationNotFound:
            raise OperationNotFound(
                f"operation {ref.spelled!r} was not found", metadata={"name": ref.spelled}
            ) from None

    async def get(self, name: str) -> operations_pb2.Operation:
        async with self._named(name) as op:
            return codec.to_operation(op)

    async def list(
        self, request: operations_pb2.ListOperationsRequest
    ) -> operations_pb2.ListOperationsResponse:
        query = codec.list_query(
            request.name,
            request.filter,
            request.page_size,
            request.page_token,
            partial_success=request.return_partial_success,
        )
        return codec.to_list_response(await self.service.list(query))

    async def cancel(self, name: str) -> None:
        """Start a two-phase cancel; a finished operation is left as it is (OK)."""
        async with self._named(name) as op:
            await self.service.cancel(op.id)

    async def delete(self, name: str) -> None:
        """Forget it: deleted if finished, else hidden while its work goes on (ADR 0017)."""
        async with self._named(name) as op:
            await self.service.forget(op.id)

    async def wait(self, name: str, timeout: float | None) -> operations_pb2.Operation:
        """Until done or `timeout` seconds (default 30 s, at most the engine's maximum)."""
        seconds = DEFAULT_WAIT_SECONDS if timeout is None else timeout
        async with self._named(name) as op:
            waited = await self.service.wait(op.id, min(max(seconds, 0.0), MAX_WAIT_SECONDS))
            return codec.to_operation(waited)

    async def start(self, collection: str, body: object) -> operations_pb2.Operation:
        """`{parent}/operations:start` (AIP-136): store a new operation and return it."""
        parent, sep, last = collection.rpartition("/")
        if not sep or last != "operations":
            raise bad_name(collection, "start under {parent}/operations")
        started = await self.service.start(codec.start_request(parent, body))
        return codec.to_operation(started.operation)
