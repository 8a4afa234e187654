"""A page for each problem type, so that the ``type`` of a problem leads to what it means.

RFC 9457 (3.1.1) asks that a problem type's URI, dereferenced, document it for people. The
meanings are docs/api.md's table of codes, word for word (a unit test holds the two together).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from adapters.http.problems import problem
from adapters.http.routes import answer_head
from adapters.http.schemas import PROBLEM_TITLES, ProblemCode, problem_type

# code: (status, meaning), in docs/api.md's order.
PROBLEM_MEANINGS: Final[Mapping[ProblemCode, tuple[str, str]]] = MappingProxyType(
    {
        ProblemCode.UNAUTHORIZED: (
            "401",
            "No token, or a token that is not valid; also `/metrics` without the metrics token.",
        ),
        ProblemCode.TOKEN_EXPIRED: ("401", "The token was valid but its `exp` has passed."),
        ProblemCode.FORBIDDEN: ("403", "The path names another user."),
        ProblemCode.VALIDATION_ERROR: (
            "400",
            "Invalid body, query parameter, header or cursor; see `errors`.",
        ),
        ProblemCode.BAD_REQUEST: (
            "400",
            "A malformed request outside field validation (e.g. a non-numeric `Content-Length`).",
        ),
        ProblemCode.TASK_NOT_FOUND: (
            "404",
            "No such task for this user (including invalid task ids).",
        ),
        ProblemCode.NOT_FOUND: (
            "404",
            "No such route (or `/docs`, `/openapi.json` when docs are disabled).",
        ),
        ProblemCode.METHOD_NOT_ALLOWED: ("405", "The path exists but not with this method."),
        ProblemCode.NOT_ACCEPTABLE: (
            "406",
            "Generic mapping of a framework 406; not produced by the task endpoints today.",
        ),
        ProblemCode.IDEMPOTENCY_CONFLICT: (
            "409",
            "The `Idempotency-Key` was already used with a different request.",
        ),
        ProblemCode.IDEMPOTENCY_IN_PROGRESS: (
            "409",
            "The first request with this key is still running; `Retry-After: 1`.",
        ),
        ProblemCode.TASK_LIMIT_REACHED: (
            "409",
            "The user already holds `TASKS_PER_USER_MAX` tasks.",
        ),
        ProblemCode.SYNC_TOKEN_EXPIRED: (
            "410",
            "The `since` of the change feed (or `Last-Event-ID`) is more than 30 days old, or the"
            " user's data was erased since, or the database was restored to an earlier point"
            " since; sync again without it (§5a).",
        ),
        ProblemCode.PRECONDITION_FAILED: (
            "412",
            "`If-Match` names a stale version; the current `ETag` is included.",
        ),
        ProblemCode.PAYLOAD_TOO_LARGE: ("413", "The body exceeds 64 KiB."),
        ProblemCode.UNSUPPORTED_MEDIA_TYPE: (
            "415",
            "Generic mapping of a framework 415; a non-JSON `Content-Type` is a 400"
            " `validation_error` instead.",
        ),
        ProblemCode.TOO_MANY_STREAMS: (
            "429",
            "The user has 5 event streams open (on any replica); `Retry-After`.",
        ),
        ProblemCode.RATE_LIMITED: ("429", "Over a rate limit; see §7 for the headers."),
        ProblemCode.REQUEST_HEADER_FIELDS_TOO_LARGE: (
            "431",
            "Request line and headers over 16 KiB or 100 fields.",
        ),
        ProblemCode.INTERNAL_ERROR: (
            "500",
            "An unexpected failure; details are only in the server log.",
        ),
        ProblemCode.DATABASE_UNAVAILABLE: (
            "503",
            "The database could not be reached in time; `Retry-After: 2`. Nothing was written,"
            " unless the connection was lost or the statement timed out while a write was"
            " committing: then its outcome is unknown, and repeating it is safe with the same"
            " `Idempotency-Key` (POST) or `If-Match` (PUT, PATCH, DELETE).",
        ),
        ProblemCode.WRITE_CONTENTION: (
            "503",
            "Concurrent writers kept changing the task while this change was being saved, and it"
            " gave up; `Retry-After: 1`. Nothing was written. (A change that loses the race tries"
            " again, up to 16 times, after random pauses that double up to 128 ms: forty writers"
            " at once on one task all get their turn, on a busy server too.)",
        ),
        ProblemCode.SERVICE_UNAVAILABLE: ("503", "Any other 503."),
        ProblemCode.HTTP_ERROR: ("other", "Any other HTTP error status not listed here."),
    }
)

_CODE_SPAN: Final = re.compile(r"`([^`]+)`")
# A static page: nothing to run, load or frame; any cache may keep it for a day.
_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "public, max-age=86400",
    "X-Content-Type-Options": "nosniff",
}


def _marked_up(text: str) -> str:
    return _CODE_SPAN.sub(r"<code>\1</code>", html.escape(text, quote=False))


def _page(code: ProblemCode) -> str:
    status, meaning = PROBLEM_MEANINGS[code]
    title = html.escape(PROBLEM_TITLES[code])
    shown_status = f"HTTP {status}" if status.isdigit() else "Any other HTTP error status"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Task API problem type</title>
</head>
<body>
<main>
<h1>{title}</h1>
<p>{shown_status}, <code>"code": "{code.value}"</code></p>
<p>{_marked_up(meaning)}</p>
<p>The body of such a response is problem details (RFC 9457,
<code>application/problem+json</code>): branch on <code>code</code>, show <code>detail</code> to
people, and quote <code>request_id</code> when you report it. Section numbers (§) refer to the
service's API guide, <code>docs/api.md</code>, whose section 8 lists every problem type.</p>
</main>
</body>
</html>
"""


_PAGES: Final[Mapping[str, str]] = MappingProxyType(
    {problem_type(code).removeprefix("/problems/"): _page(code) for code in ProblemCode}
)

problem_pages = APIRouter(prefix="/problems")


@problem_pages.get("/{name}", include_in_schema=False)
async def problem_page(name: str) -> Response:
    """The page a problem's ``type`` names; a 404 problem for any other name."""
    page = _PAGES.get(name)
    if page is None:
        return problem(404, ProblemCode.NOT_FOUND, "There is no such problem type.")
    return HTMLResponse(page, headers=_HEADERS)


answer_head(problem_pages)
