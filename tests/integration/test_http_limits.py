"""The limits on what a client may send, on a real uvicorn server and real sockets.

The application runs on fakes (no database is needed to be refused); the protocol is the one
`taskapi serve` uses, with its deadlines shortened so the tests take seconds.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import uvicorn

from adapters.http.server import MAX_HEAD_BYTES, MAX_HEADER_FIELDS, BoundedHttpToolsProtocol
from bootstrap.app import create_app
from tests.fakes import FakeTaskRepository
from tests.tokens import bearer
from tests.unit.http.conftest import fake_container, unit_settings

DEADLINE = 1.0
# The sweep runs once a second: a late client is gone within the deadline plus two sweeps.
GONE_WITHIN = DEADLINE + 2.5


class QuickProtocol(BoundedHttpToolsProtocol):
    head_timeout = DEADLINE
    body_stall = DEADLINE
    read_stall = DEADLINE

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn's own signature
        # A small send buffer, as on a slow network: a page of tasks fills it at once.
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        super().connection_made(transport)


@pytest.fixture
def repository() -> FakeTaskRepository:
    return FakeTaskRepository()


@pytest.fixture
async def port(repository: FakeTaskRepository) -> AsyncIterator[int]:
    settings = unit_settings()
    app = create_app(settings, fake_container(settings, repository))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=QuickProtocol, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  # uvicorn offers no event for it
        await asyncio.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    await serving


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _status_and_body(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    raw = await asyncio.wait_for(reader.read(), timeout=GONE_WITHIN)  # until the server closes
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    started = time.monotonic()
    try:
        data = await asyncio.wait_for(reader.read(), timeout=seconds)
    except ConnectionResetError:
        data = b""
    assert data == b"" or data.startswith(b"HTTP/1.1")
    return time.monotonic() - started


async def _healthy(port: int) -> None:
    reader, writer = await _connect(port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    status, _ = await _status_and_body(reader)
    writer.close()
    assert status == 200


async def test_a_head_within_the_limits_is_served(port: int) -> None:
    reader, writer = await _connect(port)
    filler = b"".join(f"X-F{n}: v\r\n".encode() for n in range(MAX_HEADER_FIELDS - 3))
    padding = b"a" * (MAX_HEAD_BYTES - len(filler) - 200)
    writer.write(
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Pad: "
        + padding
        + b"\r\n"
        + filler
        + b"\r\n"
    )
    status, _ = await _status_and_body(reader)
    writer.close()
    assert status == 200


async def test_a_huge_header_is_431_before_it_is_all_sent(port: int) -> None:
    reader, writer = await _connect(port)
    answer = asyncio.create_task(asyncio.wait_for(reader.read(), timeout=GONE_WITHIN))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ")
    sent = 0
    try:
        while not answer.done() and sent < 32 * 1024 * 1024:  # 32 MiB, 64 KiB at a time
            writer.write(b"a" * 65536)
            await writer.drain()
            sent += 65536
            await asyncio.sleep(0)
    except ConnectionError:
        pass
    head, _, body = (await answer).partition(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 431 ")
    problem = json.loads(body)
    assert (problem["status"], problem["code"]) == (431, "request_header_fields_too_large")
    assert f"x-request-id: {problem['request_id']}".encode() in head
    assert sent < 4 * 1024 * 1024  # refused long before the 32 MiB were in
    await _healthy(port)


@pytest.mark.parametrize(
    "head",
    [
        b"POST /api/alice/tasks HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
        b"GET /api/alice/tasks HTTP/1.1\r\nHost: t\r\nIdempotency-Key: \x7f\r\n\r\n",
        b"GET /api/alice/tasks HTTP/1.1 extra\r\nHost: t\r\n\r\n",
    ],
)
async def test_what_is_not_http_is_a_400_problem_with_a_request_id(port: int, head: bytes) -> None:
    reader, writer = await _connect(port)
    writer.write(head)
    raw = await asyncio.wait_for(reader.read(), timeout=GONE_WITHIN)
    writer.close()
    head_part, _, body = raw.partition(b"\r\n\r\n")
    lines = head_part.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert lines[0].startswith("HTTP/1.1 400 ")
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert (problem["status"], problem["code"]) == (400, "bad_request")
    assert problem["request_id"] == headers["x-request-id"]
    assert problem["type"] == "/problems/bad-request"
    await _healthy(port)


async def test_too_many_header_fields_is_431(port: int) -> None:
    reader, writer = await _connect(port)
    fields = b"".join(f"X-F{n}: v\r\n".encode() for n in range(MAX_HEADER_FIELDS + 1))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n")
    status, body = await _status_and_body(reader)
    writer.close()
    assert status == 431
    assert json.loads(body)["code"] == "request_header_fields_too_large"


async def test_a_request_line_over_the_limit_is_431(port: int) -> None:
    reader, writer = await _connect(port)
    writer.write(b"GET /healthz?" + b"q" * MAX_HEAD_BYTES + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    status, _ = await _status_and_body(reader)
    writer.close()
    assert status == 431


async def test_a_client_that_sends_nothing_is_disconnected(port: int) -> None:
    reader, writer = await _connect(port)
    assert await _closed_within(reader, GONE_WITHIN + 1) < GONE_WITHIN
    writer.close()


async def test_a_client_slow_with_its_headers_is_disconnected_and_others_are_served(
    port: int,
) -> None:
    reader, writer = await _connect(port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
    for _ in range(3):  # a header field now and then, never the end of the head
        await asyncio.sleep(DEADLINE / 2)
        await _healthy(port)
        if reader.at_eof():
            break
        writer.write(b"X-Slow: drip\r\n")
    assert await _closed_within(reader, GONE_WITHIN + 1) < GONE_WITHIN
    writer.close()


async def test_a_client_that_stalls_its_body_is_disconnected(port: int) -> None:
    reader, writer = await _connect(port)
    headers = bearer("alice")
    writer.write(
        b"POST /api/alice/tasks HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Authorization: {headers['Authorization']}\r\n".encode()
        + b"Content-Length: 100\r\n\r\n"
        + b'{"title": "'
    )
    await writer.drain()
    assert await _closed_within(reader, GONE_WITHIN + 1) < GONE_WITHIN
    writer.close()


async def test_many_idle_connections_are_all_closed(port: int) -> None:
    connections = [await _connect(port) for _ in range(50)]
    waited = await asyncio.gather(
        *(_closed_within(reader, GONE_WITHIN + 1) for reader, _ in connections)
    )
    assert max(waited) < GONE_WITHIN
    for _, writer in connections:
        writer.close()
    await _healthy(port)


async def test_a_keep_alive_client_makes_several_requests(port: int) -> None:
    reader, writer = await _connect(port)
    for _ in range(3):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), timeout=2)
        assert line.startswith(b"HTTP/1.1 200")
        await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), timeout=2)
    writer.close()


async def _page_of_long_tasks(port: int, repository: FakeTaskRepository) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        created = await client.post("/api/alice/tasks", json={"title": "t"}, headers=bearer())
    first = repository.tasks[created.json()["id"]]
    for number in range(2, 1001):  # a page of ~5 MB
        repository.tasks[number] = replace(first, id=number, description="d" * 5000)


async def _ask_with_a_small_window(
    port: int,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    client_socket = socket.socket()
    client_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client_socket.connect(("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=client_socket, limit=4096)
    writer.write(
        b"GET /api/alice/tasks?limit=1000 HTTP/1.1\r\nHost: t\r\n"
        + f"Authorization: {bearer()['Authorization']}\r\n\r\n".encode()
    )
    return reader, writer


def _length_and_body(received: bytes) -> tuple[int, bytes]:
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    field = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return int(field.split(b":")[1]), body


async def test_a_client_that_reads_slowly_but_steadily_is_not_dropped(
    port: int, repository: FakeTaskRepository
) -> None:
    await _page_of_long_tasks(port, repository)
    reader, writer = await _ask_with_a_small_window(port)
    received = b""
    started = time.monotonic()
    while time.monotonic() - started < GONE_WITHIN:  # ~20 KB/s: never a second without reading
        received += await asyncio.wait_for(reader.read(2048), timeout=GONE_WITHIN)
        await asyncio.sleep(0.1)
    received += await asyncio.wait_for(reader.read(), timeout=30)  # then the rest, at once
    length, body = _length_and_body(received)
    assert len(body) == length
    writer.close()


async def test_a_client_that_reads_nothing_of_a_response_is_dropped(
    port: int, repository: FakeTaskRepository
) -> None:
    await _page_of_long_tasks(port, repository)
    reader, writer = await _ask_with_a_small_window(port)
    await asyncio.sleep(GONE_WITHIN)  # reading nothing
    received = await asyncio.wait_for(reader.read(), timeout=GONE_WITHIN)  # then all there is
    length, body = _length_and_body(received)
    assert len(body) < length  # cut off: the connection was dropped mid-response
    writer.close()
    await _healthy(port)
