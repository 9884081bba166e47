"""google.longrunning.Operations over gRPC (grpc.aio), with AIP-193 rich status on every error,
and `longrunning.v1.OperationStarter/StartOperation` to start operations the same way.

The servicer base and its registration ship in googleapis-common-protos: nothing is generated.
The start method takes a `google.protobuf.Struct` shaped like the REST `:start` body plus
`parent`, so a client needs no descriptor of ours either.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from grpc_status import rpc_status

from longrunning.core.errors import InvalidRequest, LongrunningError
from longrunning.engine.service import DEFAULT_PARENT, OperationService
from longrunning.faces.google import codec
from longrunning.faces.google.operations import GoogleOperations

log = logging.getLogger("longrunning.faces.google")

STARTER_SERVICE = "longrunning.v1.OperationStarter"
START_METHOD = f"/{STARTER_SERVICE}/StartOperation"
DEADLINE_MARGIN_SECONDS = 0.05
"""WaitOperation answers this long before the call's deadline, so the caller gets the state
rather than DEADLINE_EXCEEDED."""

_T = TypeVar("_T")


async def _abort(context: grpc.aio.ServicerContext[object, object], exc: Exception) -> NoReturn:
    if not isinstance(exc, LongrunningError):
        log.error("gRPC call failed", exc_info=exc)
        exc = codec.InternalError("internal error; see the server log")
    status = rpc_status.to_status(codec.error_status(exc))
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("abort returned")  # pragma: no cover - abort always raises


async def _answer(
    context: grpc.aio.ServicerContext[object, object], call: Callable[[], Awaitable[_T]]
) -> _T:
    try:
        return await call()
    except Exception as exc:  # every error leaves as a status, never a stack trace
        await _abort(context, exc)


class OperationsServicer(operations_pb2_grpc.OperationsServicer):
    def __init__(self, service: OperationService) -> None:
        self.operations = GoogleOperations(service)

    async def ListOperations(
        self,
        request: operations_pb2.ListOperationsRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> operations_pb2.ListOperationsResponse:
        return await _answer(context, lambda: self.operations.list(request))

    async def GetOperation(
        self,
        request: operations_pb2.GetOperationRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> operations_pb2.Operation:
        return await _answer(context, lambda: self.operations.get(request.name))

    async def DeleteOperation(
        self,
        request: operations_pb2.DeleteOperationRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> empty_pb2.Empty:
        await _answer(context, lambda: self.operations.delete(request.name))
        return empty_pb2.Empty()

    async def CancelOperation(
        self,
        request: operations_pb2.CancelOperationRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> empty_pb2.Empty:
        await _answer(context, lambda: self.operations.cancel(request.name))
        return empty_pb2.Empty()

    async def WaitOperation(
        self,
        request: operations_pb2.WaitOperationRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> operations_pb2.Operation:
        timeout = (
            request.timeout.ToTimedelta().total_seconds() if request.HasField("timeout") else None
        )
        remaining = context.time_remaining()
        if remaining is not None:
            bound = max(remaining - DEADLINE_MARGIN_SECONDS, 0.0)
            timeout = bound if timeout is None else min(timeout, bound)
        return await _answer(context, lambda: self.operations.wait(request.name, timeout))


def _starter(service: OperationService) -> grpc.GenericRpcHandler[object, object]:
    operations = GoogleOperations(service)

    async def start(
        request: struct_pb2.Struct, context: grpc.aio.ServicerContext[object, object]
    ) -> operations_pb2.Operation:
        body = json_format.MessageToDict(request)
        parent = body.pop("parent", DEFAULT_PARENT)

        async def call() -> operations_pb2.Operation:
            if not isinstance(parent, str):
                raise InvalidRequest("parent must be a string", reason="INVALID_FIELD")
            return await operations.start(f"{parent}/operations", body)

        return await _answer(context, call)

    return grpc.method_handlers_generic_handler(
        STARTER_SERVICE,
        {
            "StartOperation": grpc.unary_unary_rpc_method_handler(
                start,
                request_deserializer=struct_pb2.Struct.FromString,
                response_serializer=operations_pb2.Operation.SerializeToString,
            )
        },
    )


async def start_grpc_server(
    service: OperationService, host: str, port: int, *, tls: tuple[bytes, bytes] | None = None
) -> tuple[grpc.aio.Server, int]:
    """A started grpc.aio server on host:port, and the port it bound (0 picks one); over TLS
    with `tls` = (PEM certificate chain, PEM private key)."""
    server = grpc.aio.server()
    operations_pb2_grpc.add_OperationsServicer_to_server(  # type: ignore[no-untyped-call]
        OperationsServicer(service), server
    )
    server.add_generic_rpc_handlers((_starter(service),))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)
        else:
            cert, key = tls
            credentials = grpc.ssl_server_credentials([(key, cert)])
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as exc:  # grpc raises this when the address is taken
        raise OSError(f"cannot listen for gRPC on {address}: {exc}") from None
    await server.start()
    return server, bound
