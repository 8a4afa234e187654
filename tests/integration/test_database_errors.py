"""What the pool makes of a server that refuses at connection start, as Neon's proxy does."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest

from adapters.postgres.database import Database, PoolOptions
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.health import DatabaseHealth
from application.errors import StorageUnavailable

SSL_REQUEST = 80877103  # the code of the protocol's SSLRequest


def _error_response(sqlstate: str, message: str) -> bytes:
    fields = b"".join(
        kind + value.encode() + b"\0"
        for kind, value in ((b"S", "ERROR"), (b"V", "ERROR"), (b"C", sqlstate), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # The protocol's start: SSLRequest (answered "no"), then the startup packet, then the error.
    while True:
        (length,) = struct.unpack("!I", await reader.readexactly(4))
        (code,) = struct.unpack("!I", (await reader.readexactly(length - 4))[:4])
        if code == SSL_REQUEST:
            writer.write(b"N")
            continue
        break
    writer.write(_error_response("XX000", "Couldn't connect to compute node"))
    await writer.drain()
    writer.close()


@pytest.fixture
async def refusing_url() -> AsyncIterator[str]:
    server = await asyncio.start_server(_refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"postgresql://app@127.0.0.1:{port}/neondb"


async def test_a_compute_that_cannot_wake_is_unavailable_not_a_bug(refusing_url: str) -> None:
    database = Database(DatabaseOptions.from_url(refusing_url), PoolOptions(size=2))
    await database.start()
    try:
        with pytest.raises(StorageUnavailable):  # a 503 with Retry-After, not a 500
            await database.fetch("SELECT 1")
        assert await DatabaseHealth(database).is_ready() is False  # /readyz: 503, not a 500
    finally:
        await database.close()
