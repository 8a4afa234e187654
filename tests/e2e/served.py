"""``taskapi serve`` as a real process, and raw HTTP/1.1 requests to it.

For what the in-process transport cannot express: httpx normalises ``..`` out of every path and
refuses control characters, and only a real server applies its own request-line and header
limits. ``raw_request`` writes the bytes given, unchanged, on a socket.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.process import taskapi_serve
from tests.tokens import SECRET


@contextmanager
def serving(database_url: str, directory: Path) -> Iterator[tuple[str, int]]:
    """Run ``taskapi serve`` on a free port until the block ends; yields (host, port)."""
    with taskapi_serve(
        directory, DATABASE_URL=database_url, JWT_SECRET=SECRET, LOG_LEVEL="WARNING"
    ) as (base, _):
        url = httpx.URL(base)
        yield url.host, url.port or 80


@dataclass(frozen=True, slots=True)
class RawResponse:
    """What the server answered to a raw request."""

    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(
    address: tuple[str, int],
    method: str,
    target: bytes,
    headers: dict[str, bytes] | None = None,
    body: bytes = b"",
    timeout: float = 10,
) -> RawResponse:
    """Send ``METHOD target HTTP/1.1`` with exactly these bytes; read the whole answer."""
    lines = [method.encode("ascii") + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines.extend(f"{name}: ".encode("ascii") + value for name, value in (headers or {}).items())
    if body:
        lines.append(f"Content-Length: {len(body)}".encode("ascii"))
    lines.append(b"Connection: close")
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        content = response.read()
        return RawResponse(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=content,
        )
