"""uvicorn's httptools protocol, with the contract's limits on what a client may send.

httptools sets no limit on the size or number of request headers and no deadline for sending
them (API.md, "Limits"), and uvicorn only times out idle keep-alive connections. The limits are
enforced here, where requests are parsed, before any of it reaches the application: the request
line and headers together at most 16 KiB in at most 100 fields (431 and the connection closes), 10
seconds to finish the headers and at most 10 seconds of silence while a body is due. A client that
reads nothing of a response for 30 seconds is dropped too: uvicorn would wait for it forever, and
the response (an event stream's place among the user's five, say) with it.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from http import HTTPStatus
from typing import Final

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from adapters.http.schemas import PROBLEM_JSON, ProblemCode, problem_body

MAX_HEAD_BYTES: Final = 16 * 1024
MAX_HEADER_FIELDS: Final = 100
HEAD_TIMEOUT_SECONDS: Final = 10.0
BODY_STALL_SECONDS: Final = 10.0
READ_STALL_SECONDS: Final = 30.0
_SWEEP_SECONDS: Final = 1.0
_LINGER_SECONDS: Final = 1.0

SERVER_STOPPING: Final = "taskapi.server_stopping"
"""Lifespan state: what to call when the server begins to stop, before it waits for requests."""

_watched: weakref.WeakSet[BoundedHttpToolsProtocol] = weakref.WeakSet()
_sweeping: set[asyncio.AbstractEventLoop] = set()


def _problem_response(status: int, code: ProblemCode, detail: str) -> bytes:
    """A problem+json answer written by the protocol itself, before (or instead of) the app."""
    request_id = f"{random.getrandbits(128):032x}"
    body = orjson.dumps(problem_body(status, code, detail, request_id))
    return (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        f"content-type: {PROBLEM_JSON}\r\ncontent-length: {len(body)}\r\n"
        f"x-request-id: {request_id}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def _too_large_response() -> bytes:
    return _problem_response(
        431,
        ProblemCode.REQUEST_HEADER_FIELDS_TOO_LARGE,
        f"The request line and headers may hold at most {MAX_HEAD_BYTES} bytes "
        f"in {MAX_HEADER_FIELDS} fields.",
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that refuses oversized heads and drops clients that stall.

    Deadlines are checked by one sweep a second over the open connections, not by a timer per
    request, so a request that keeps them costs two attribute writes.
    """

    max_head_bytes = MAX_HEAD_BYTES
    max_header_fields = MAX_HEADER_FIELDS
    head_timeout = HEAD_TIMEOUT_SECONDS
    body_stall = BODY_STALL_SECONDS
    read_stall = READ_STALL_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn's own signature
        super().connection_made(transport)
        self._head_bytes = 0  # raw bytes received since the request began, until its head ends
        self._head_size = 0  # request target and header fields, as parsed
        self._fields = 0
        self._refused = False
        self._head_since: float | None = self.loop.time()
        self._body_since: float | None = None
        self._unread_since: float | None = None  # since when the client took in nothing
        self._unread_bytes = 0  # what was waiting to be sent then
        _watched.add(self)
        if self.loop not in _sweeping:
            _sweeping.add(self.loop)
            self.loop.call_later(_SWEEP_SECONDS, _sweep, self.loop)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered 431: what still comes is read and dropped until the close
        reading_head = self._head_since is not None
        if reading_head:
            self._head_bytes += len(data)
        if self._body_since is not None:
            self._body_since = self.loop.time()
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            if self._refused:
                self._refuse()
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response(f"The request is not valid HTTP/1.1 ({error}).")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        # Still in the head after all of it: every byte so far is head.
        if self._refused or (
            self._head_since is not None and self._head_bytes > self.max_head_bytes
        ):
            self._refuse()

    def send_400_response(self, msg: str) -> None:
        """What httptools cannot parse (a bad ``Content-Length``, a control byte in a header)."""
        self.transport.write(_problem_response(400, ProblemCode.BAD_REQUEST, msg))
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_size = 0
        self._fields = 0
        if self._head_since is None:
            self._head_since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self._fields > self.max_header_fields or self._head_size > self.max_head_bytes:
            self._refused = True
            raise _Refused  # stops the parser: nothing of this request reaches the app
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_since = None
        self._body_since = self.loop.time()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_since = None
        super().on_message_complete()

    def _refuse(self) -> None:
        self._refused = True
        self._head_since = self._body_since = None
        if self.transport.is_closing():
            return
        self.transport.write(_too_large_response())
        # Closed at once, a socket with unread input answers with a reset that can overtake the
        # 431; so: no more writes, input read and dropped for a moment, then the close.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_SECONDS, self.transport.close)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._unread_since = self.loop.time()
        self._unread_bytes = self.transport.get_write_buffer_size()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._unread_since = None

    def shutdown(self) -> None:
        # uvicorn tells each connection, not the application, that it is stopping; a response
        # that never ends by itself (an event stream) must hear it before the graceful wait.
        stopping = self.app_state.get(SERVER_STOPPING)
        if stopping is not None:
            stopping()
        super().shutdown()

    def overdue(self, now: float) -> bool:
        """Whether the client is late with its headers, or silent while its body is due."""
        head = self._head_since is not None and now - self._head_since > self.head_timeout
        stalled = self._body_since is not None and now - self._body_since > self.body_stall
        return head or stalled

    def not_reading(self, now: float) -> bool:
        """Whether the client has taken in nothing of the response for ``read_stall`` seconds."""
        if self._unread_since is None:
            return False
        waiting = self.transport.get_write_buffer_size()
        if waiting < self._unread_bytes:  # it took in some since the last look: slow, not gone
            self._unread_since, self._unread_bytes = now, waiting
        return now - self._unread_since > self.read_stall


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that is over the limits."""


def _sweep(loop: asyncio.AbstractEventLoop) -> None:
    """Close the connections of clients late with their headers or body, or reading nothing."""
    now = loop.time()
    for protocol in list(_watched):
        if protocol.loop is not loop:
            continue
        if protocol.not_reading(now):
            protocol.transport.abort()  # close() would wait to send what the client will not read
        elif protocol.overdue(now) and not protocol.transport.is_closing():
            protocol.transport.close()
    loop.call_later(_SWEEP_SECONDS, _sweep, loop)
