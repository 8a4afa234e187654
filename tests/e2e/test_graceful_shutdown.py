"""SIGTERM stops accepting, lets requests in flight finish, closes the pool, and exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.e2e.conftest import Rows
from tests.process import taskapi_serve
from tests.tokens import SECRET, bearer


def _connect(base: str) -> socket.socket:
    parts = urlsplit(base)
    return socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10)


async def test_sigterm_lets_the_request_in_flight_finish(
    database_url: str, tmp_path: Path, rows: Rows, clean_tasks: None
) -> None:
    body = json.dumps({"title": "written during shutdown"}).encode()
    head = (
        "POST /api/alice/tasks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: {bearer()['Authorization']}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with taskapi_serve(tmp_path, DATABASE_URL=database_url, JWT_SECRET=SECRET) as (base, process):
        in_flight = _connect(base)
        in_flight.sendall(head + body[:10])  # the request has begun; its body is still coming
        await asyncio.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while True:  # the listening socket closes soon after the signal
            try:
                _connect(base).close()
            except OSError:
                break
            assert time.monotonic() < deadline, "new connections still accepted after SIGTERM"
            await asyncio.sleep(0.05)
        assert process.poll() is None, "the server quit with a request in flight"
        in_flight.sendall(body[10:])
        answer = await asyncio.to_thread(in_flight.recv, 65536)
        in_flight.close()
        started = time.monotonic()
        code = await asyncio.to_thread(process.wait, 15)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]
    # uvicorn re-raises the signal it handled once it is done, as a well-behaved process should.
    assert code in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 5
    assert await rows.count("alice") == 1
    log = (tmp_path / "server.log").read_text()
    assert "Application shutdown complete" in log  # the lifespan ran: the pool is closed
    assert "Traceback" not in log
