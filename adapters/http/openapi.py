"""What the OpenAPI document says beyond the route declarations: problems, headers, security.

Routes declare their own parameters, bodies and responses; this module holds the declarations
they share (the problem responses and the response headers) and the few document-wide facts
FastAPI has no parameter for: bearer security at the root (none on the probes), the header every
response carries, and no 422 (validation errors are 400 problems).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from adapters.http.schemas import MAX_BODY_BYTES, PROBLEM_JSON, Problem, ProblemCode, problem_body
from adapters.http.server import MAX_HEAD_BYTES, MAX_HEADER_FIELDS

_STRING: Final = {"type": "string"}

HEADERS: Final[dict[str, dict[str, Any]]] = {
    "ETag": {"description": 'The task\'s version, e.g. `"3"`', "schema": _STRING},
    "Location": {"description": "The new task", "schema": _STRING},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "X-Total-Count": {
        "description": "How many tasks match the filter",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Link": {
        "description": 'RFC 8288 `<…>; rel="next"` while more tasks follow',
        "schema": _STRING,
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 0},
    },
    "WWW-Authenticate": {"description": "The bearer challenge (RFC 6750)", "schema": _STRING},
    "RateLimit-Policy": {
        "description": 'The limit that was hit (IETF draft), e.g. `"user";q=200;w=4`',
        "schema": _STRING,
    },
    "RateLimit": {
        "description": 'What is left of it (IETF draft), e.g. `"user";r=0;t=1`',
        "schema": _STRING,
    },
    "X-Request-ID": {
        "description": "The request's id: the client's when sane, else made; in every log line",
        "schema": _STRING,
    },
    "Cache-Control": {
        "description": "`private, no-cache` (the event stream: `no-cache`): no shared cache "
        "keeps a user's data, and a browser revalidates (ETag) before reusing it",
        "schema": _STRING,
    },
    "X-Accel-Buffering": {
        "description": "`no`: a proxy such as nginx passes each event on as it comes",
        "schema": _STRING,
    },
}

_PROBLEMS: Final[dict[int, tuple[str, tuple[str, ...]]]] = {
    400: ("Invalid body, query or header (`validation_error`)", ()),
    401: (
        "Missing, invalid or expired token (`unauthorized`, `token_expired`)",
        ("WWW-Authenticate",),
    ),
    403: ("The path names another user (`forbidden`)", ()),
    404: ("No such task of this user (`task_not_found`)", ()),
    409: (
        "The user holds the most tasks one user may (`task_limit_reached`); or the "
        "Idempotency-Key was used with another body (`idempotency_conflict`) or is still in "
        "flight (`idempotency_in_progress`, with Retry-After)",
        ("Retry-After",),
    ),
    410: (
        "The sync token is older than the 30 days of remembered deletions "
        "(`sync_token_expired`): sync again without `since`",
        (),
    ),
    412: ("If-Match names a stale version (`precondition_failed`)", ("ETag",)),
    413: (f"Body over {MAX_BODY_BYTES // 1024} KiB (`payload_too_large`)", ()),
    431: (
        f"Request line and headers over {MAX_HEAD_BYTES // 1024} KiB or {MAX_HEADER_FIELDS} "
        "fields (`request_header_fields_too_large`); the connection closes",
        (),
    ),
    429: (
        "Over the rate limit of the user, or of the address for failed authentications "
        "(`rate_limited`); or the user has the most event streams open (`too_many_streams`)",
        ("Retry-After", "RateLimit-Policy", "RateLimit"),
    ),
    503: (
        "The database is unreachable (`database_unavailable`), or the task kept changing while "
        "this change was being saved (`write_contention`)",
        ("Retry-After",),
    ),
}


EVENT_STREAM: Final = "text/event-stream"
_REQUEST_ID: Final = "4bf92f3577b34da6a3ce929d0e0e4736"
_EXAMPLES: Final[dict[int, dict[str, object]]] = {
    status: problem_body(status, code, detail, _REQUEST_ID, errors)
    for status, code, detail, errors in (
        (
            400,
            ProblemCode.VALIDATION_ERROR,
            "title must not be empty",
            [{"field": "title", "message": "must not be empty"}],
        ),
        (401, ProblemCode.UNAUTHORIZED, "The bearer token is not valid.", None),
        (403, ProblemCode.FORBIDDEN, "You may only access your own tasks.", None),
        (404, ProblemCode.TASK_NOT_FOUND, "No such task.", None),
        (
            409,
            ProblemCode.IDEMPOTENCY_CONFLICT,
            "This Idempotency-Key was already used with a different request.",
            None,
        ),
        (
            410,
            ProblemCode.SYNC_TOKEN_EXPIRED,
            "This sync token is older than the deletions still remembered; sync again without"
            " since.",
            None,
        ),
        (
            412,
            ProblemCode.PRECONDITION_FAILED,
            "The task has changed since you read it (If-Match is stale).",
            None,
        ),
        (
            413,
            ProblemCode.PAYLOAD_TOO_LARGE,
            f"The body may hold at most {MAX_BODY_BYTES} bytes.",
            None,
        ),
        (
            431,
            ProblemCode.REQUEST_HEADER_FIELDS_TOO_LARGE,
            f"The request line and headers may hold at most {MAX_HEAD_BYTES} bytes in"
            f" {MAX_HEADER_FIELDS} fields.",
            None,
        ),
        (
            429,
            ProblemCode.RATE_LIMITED,
            "Too many requests; retry after the time Retry-After gives.",
            None,
        ),
        (
            503,
            ProblemCode.DATABASE_UNAVAILABLE,
            "The database is not reachable right now; retry shortly.",
            None,
        ),
    )
}


def problems(
    *statuses: int, database: bool = True, limited: bool = True
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these error statuses, each a problem+json.

    429 and 503 are added unless the operation is not rate limited or reaches no database;
    431 always (a long query string can be one on any operation).
    """
    return {
        status: {
            "description": _PROBLEMS[status][0],
            "model": Problem,
            "content": {PROBLEM_JSON: {"example": _EXAMPLES[status]}},
            **(
                {"headers": {name: HEADERS[name] for name in _PROBLEMS[status][1]}}
                if _PROBLEMS[status][1]
                else {}
            ),
        }
        for status in (
            *statuses,
            *((429,) if limited else ()),
            431,
            *((503,) if database else ()),
        )
    }


def openapi_builder(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: FastAPI's document with the document-wide facts, built once."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
            license_info=app.license_info,
        )
        bearer: list[dict[str, list[str]]] = [{"bearer": []}]
        schema["security"] = bearer
        components = schema.setdefault("components", {})
        for route, path in schema["paths"].items():
            for operation in path.values():
                # Secured routes say so through their bearer dependency: the root says it once.
                if operation.pop("security", None) != bearer:
                    operation["security"] = []
                responses = operation["responses"]
                responses.pop("422", None)
                for response in responses.values():
                    declared = response.setdefault("headers", {})
                    declared["X-Request-ID"] = HEADERS["X-Request-ID"]
                    if route.startswith("/api/"):  # adapters.http.middleware: a user's data
                        declared["Cache-Control"] = HEADERS["Cache-Control"]
                    # FastAPI files a response model under the route's media type (JSON, or the
                    # event stream's); errors are problem+json.
                    content = response.get("content", {})
                    # FastAPI describes an event stream with OpenAPI 3.2's itemSchema; in this
                    # 3.1 document the stream is text (its events are described in prose).
                    if "itemSchema" in content.get(EVENT_STREAM, {}):
                        content[EVENT_STREAM] = {"schema": {"type": "string"}}
                    if PROBLEM_JSON in content:
                        for media in [m for m in content if m != PROBLEM_JSON]:
                            content[PROBLEM_JSON] = {**content.pop(media), **content[PROBLEM_JSON]}
        for name in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    return build
