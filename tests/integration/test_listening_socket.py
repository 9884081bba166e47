"""The socket `serve` listens on hands out connections with TCP_NODELAY on.

Without it, a keep-alive response written as headers then body waits for the client's delayed
ACK (~40 ms on Linux) on every request after the first: the benchmark (issue 7, W4) found every
API call capped at ~25 per second per connection.
"""

from __future__ import annotations

import asyncio
import socket

from longrunning.app import _bind


async def test_accepted_connections_have_tcp_nodelay() -> None:
    listener = _bind("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=listener)
    try:
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(seen, timeout=5) != 0
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
