"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs throughput and breaks contextvars).

``RequestEdgeMiddleware`` is the outermost layer and does, with one ``send`` wrapper, what every
request needs: its id, its timing, access log and metrics, conditional headers' lines joined, and
the last-resort 500.
``BodySizeLimitMiddleware`` and ``InternalErrorMiddleware`` sit inside the CORS layer, so that a
413 or a 500 still carries CORS headers and a browser can read it.
"""

from __future__ import annotations

import logging
import random
import re
import time
from http import HTTPStatus

import anyio
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.context import request_id_var
from adapters.http.observability import UNMATCHED, HttpMetrics
from adapters.http.problems import internal_error, problem
from adapters.http.schemas import MAX_BODY_BYTES, ProblemCode

access_log = logging.getLogger("taskapi.access")

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# A user's data: no shared cache may keep it (whatever it makes of Authorization), and a browser
# asks again (If-None-Match) before it reuses what it kept.
_PRIVATE = (b"cache-control", b"private, no-cache")
# Lists of entity tags, which a client or proxy may split over several lines (RFC 9110 5.3).
_TAG_LISTS = frozenset({b"if-match", b"if-none-match"})


def _joined_tag_lists(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | None:
    """Each tag list on one line, when one came on several (FastAPI reads a header's first)."""
    names = [name for name, _ in headers if name in _TAG_LISTS]
    if len(names) == len(set(names)):
        return None
    joined: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _TAG_LISTS:
            joined[name] = joined[name] + b", " + value if name in joined else value
    return [(name, value) for name, value in headers if name not in _TAG_LISTS] + list(
        joined.items()
    )


class RequestEdgeMiddleware:
    """Request id (taken when sane, else made), timing, access log, metrics, and the last 500."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        if given is not None and _REQUEST_ID.fullmatch(given):
            request_id = given.decode("ascii")
        else:
            # Unique, not secret: no system call for it on every request.
            request_id = f"{random.getrandbits(128):032x}"
        token = request_id_var.set(request_id)
        if (joined := _joined_tag_lists(scope["headers"])) is not None:
            scope = {**scope, "headers": joined}
        id_header = (b"x-request-id", request_id.encode("ascii"))
        private = scope["path"].startswith("/api/")
        status = 0

        async def edge_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), id_header]
                if private and not any(name == b"cache-control" for name, _ in headers):
                    headers.append(_PRIVATE)
                message["headers"] = headers
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, edge_send)
        except Exception as error:
            # A bug still gets a problem+json 500 with this request's id, never a stack trace.
            # Past the response start, only the server can cut the response off.
            if status:
                if _client_left(error):
                    return  # nothing to answer, and no bug: not an error in the log
                raise
            await internal_error(error)(scope, receive, edge_send)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, status or 500, time.perf_counter() - started)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        method = scope["method"]
        self.metrics.observe(method, route, status, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "user": scope.get("state", {}).get("subject"),
                    "client": client[0] if client else None,
                },
            )


def _too_large_detail(max_bytes: int) -> str:
    return f"The body may hold at most {max_bytes} bytes."


class _BodyTooLarge(HTTPException):
    # An HTTPException, so that FastAPI's body reader passes it on (it turns other errors into
    # 400s) to the one error mapping, which answers 413 inside the CORS layer.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, detail=_too_large_detail(max_bytes))


def _client_left(error: BaseException) -> bool:
    # FastAPI's event-stream keep-alive task finds its stream closed when the client disconnects
    # (fastapi/fastapi#15725) and raises that, in a group, once the response has ended.
    if isinstance(error, BaseExceptionGroup):
        return all(_client_left(inner) for inner in error.exceptions)
    return isinstance(error, anyio.BrokenResourceError | anyio.ClosedResourceError)


class InternalErrorMiddleware:
    """A bug's 500, answered inside the CORS layer; the edge keeps the last resort for the rest."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as error:
            if started:  # past the response start, only the server can cut it off
                raise
            await internal_error(error)(scope, receive, send)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as problem+json like every error."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < HTTPStatus.BAD_REQUEST:
            return response
        cors = {k: v for k, v in response.headers.items() if k.startswith("access-control-")}
        refused = bytes(response.body).decode()  # "Disallowed CORS origin, method"
        return problem(
            400, ProblemCode.BAD_REQUEST, f"{refused}: the preflight is refused.", headers=cors
        )


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413, by ``Content-Length`` or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            # The server delivers no more than Content-Length bytes: checking it is enough.
            if not length.isdigit():
                await problem(400, ProblemCode.BAD_REQUEST, "Content-Length is not a number.")(
                    scope, receive, send
                )
            elif int(length) > self.max_bytes:
                await self._too_large(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            # Handlers read the whole body before they answer, so no response has started.
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, ProblemCode.PAYLOAD_TOO_LARGE, _too_large_detail(self.max_bytes))
        await response(scope, receive, send)
