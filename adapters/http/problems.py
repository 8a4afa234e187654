"""Errors as ``application/problem+json`` (RFC 9457), and the one mapping of errors to HTTP.

Every response that is not a success goes through ``problem()``: same shape, a stable ``code``,
the request id, and never a stack trace, SQL or a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from adapters.http.conditional import entity_tag
from adapters.http.context import request_id_var
from adapters.http.dependencies import DuplicateKey, current_principal, owner, provided
from adapters.http.observability import HttpMetrics, SampledLog
from adapters.http.rate_limits import RateLimited
from adapters.http.schemas import PROBLEM_JSON, ProblemCode, problem_body
from application.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    IdempotencyInProgress,
    MissingToken,
    StorageUnavailable,
    TokenExpired,
    WriteContention,
)
from application.events import MAX_STREAMS_PER_USER, TooManyStreams
from application.sync import SyncTokenExpired
from domain.errors import (
    AccessDenied,
    InvalidTask,
    StaleVersion,
    TaskLimitReached,
    TaskNotFound,
)

RETRY_AFTER_SECONDS: Final = 2
STREAM_RETRY_AFTER_SECONDS: Final = 5

error_log = logging.getLogger("taskapi.errors")

_security_log: Final = provided("security_log", SampledLog)

_CODES_BY_STATUS: Final = {
    400: ProblemCode.BAD_REQUEST,
    401: ProblemCode.UNAUTHORIZED,
    403: ProblemCode.FORBIDDEN,
    404: ProblemCode.NOT_FOUND,
    405: ProblemCode.METHOD_NOT_ALLOWED,
    406: ProblemCode.NOT_ACCEPTABLE,
    412: ProblemCode.PRECONDITION_FAILED,
    413: ProblemCode.PAYLOAD_TOO_LARGE,
    415: ProblemCode.UNSUPPORTED_MEDIA_TYPE,
    503: ProblemCode.SERVICE_UNAVAILABLE,
}


def problem(
    status: int,
    code: ProblemCode,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build a problem+json response."""
    body = problem_body(status, code, detail, request_id_var.get() or "", errors)
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_JSON
    )


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


async def log_security_event(
    request: Request, status: int, reason: str, subject: str | None
) -> None:
    """One structured line per refused request (401/403). Never the token or the secret."""
    sampled = await _security_log(request)
    sampled.warning(
        "request refused",
        extra={
            "event": "auth_failure" if status == HTTPStatus.UNAUTHORIZED else "access_denied",
            "status": status,
            "reason": reason,
            "method": request.method,
            "path": request.url.path,
            "client": _client(request),
            "subject": subject,
        },
    )


async def _authentication_failed(request: Request, error: Exception) -> Response:
    assert isinstance(error, AuthenticationFailed)  # noqa: S101  # registered for this type only
    await log_security_event(request, 401, error.reason, error.subject)
    if isinstance(error, TokenExpired):
        code, detail, challenge = (
            ProblemCode.TOKEN_EXPIRED,
            "The token has expired.",
            "invalid_token",
        )
    elif isinstance(error, MissingToken):
        code, detail, challenge = ProblemCode.UNAUTHORIZED, "A bearer token is required.", None
    else:
        code, detail = ProblemCode.UNAUTHORIZED, "The bearer token is not valid."
        challenge = "invalid_token"
    www_authenticate = 'Bearer realm="taskapi"'
    if challenge:
        www_authenticate += f', error="{challenge}", error_description="{detail}"'
    return problem(401, code, detail, headers={"WWW-Authenticate": www_authenticate})


async def _access_denied(request: Request, error: Exception) -> Response:
    subject = getattr(request.state, "subject", None)
    await log_security_event(request, 403, "path user is not the token's user", subject)
    return problem(403, ProblemCode.FORBIDDEN, "You may only access your own tasks.")


async def _invalid_task(request: Request, error: Exception) -> Response:
    assert isinstance(error, InvalidTask)  # noqa: S101  # registered for this type only
    return _validation_problem([{"field": error.field, "message": error.message}])


def _validation_problem(errors: list[dict[str, str]]) -> Response:
    first = errors[0]
    return problem(
        400, ProblemCode.VALIDATION_ERROR, f"{first['field']} {first['message']}", errors=errors
    )


_MESSAGES: Final = {
    "extra_forbidden": "is not a field that can be set",
    "json_invalid": "is not valid JSON",
    "model_attributes_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "missing": "is required",
    "string_pattern_mismatch": "has characters that are not allowed",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be an array",
    "timezone_aware": "must have a time zone offset",
}
_BOUNDS: Final = {
    "greater_than_equal": ("must be at least {}", "ge"),
    "less_than_equal": ("must be at most {}", "le"),
    "string_too_short": ("must be at least {} characters", "min_length"),
    "string_too_long": ("must be at most {} characters", "max_length"),
    "too_long": ("must hold at most {} items", "max_length"),
    "too_short": ("must hold at least {} items", "min_length"),
}
# A length bound on a union (``str | None``) reports a string's length as a count of items.
_OF_TEXT: Final = {"too_long": "string_too_long", "too_short": "string_too_short"}


def _field_error(item: Mapping[str, Any]) -> dict[str, str]:
    # ("body", "title") names the field "title"; ("body",) or ("body", 17) the body itself.
    where, *names = item["loc"]
    if where != "body":
        # A parameter or header is one value: what follows its name are a union's members.
        field = str(names[0]) if names else str(where)
    else:
        field = ".".join(str(name) for name in names if isinstance(name, str)) or str(where)
    if where == "body" and not names:
        if isinstance(item.get("input"), bytes):  # FastAPI reads only JSON media types as JSON
            return {"field": "body", "message": "must be JSON (Content-Type: application/json)"}
        if item["type"] == "missing":
            return {"field": "body", "message": "must be a JSON object"}
    return {"field": field, "message": _message(item)}


def _message(item: Mapping[str, Any]) -> str:
    """The rule the field broke, as the end of a sentence that starts with the field's name."""
    kind, context = item["type"], item.get("ctx") or {}
    if isinstance(item.get("input"), str):
        kind = _OF_TEXT.get(kind, kind)
    if kind == "string_too_short" and context.get("min_length") == 1:
        return "must not be empty"
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind in _BOUNDS:
        template, key = _BOUNDS[kind]
        return template.format(context.get(key))
    # A ValueError raised by one of our validators already says what is wrong; pydantic's own
    # messages read "Input should be ...".
    message = str(item["msg"]).removeprefix("Value error, ")
    return message.replace("Input should be", "must be", 1)


async def _invalid_request(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)  # noqa: S101  # registered for this type only
    items = error.errors()
    if any(item["type"] == "json_invalid" for item in items):
        return await _unparsable_body(request, error.__cause__)
    invalid = [item for item in items if tuple(item["loc"][:2]) != ("path", "task_id")]
    if not invalid:  # not a task id at all: no such task (after every 400)
        return await _task_not_found(request, error)
    errors: list[dict[str, str]] = []
    parameters: set[str] = set()
    for item in invalid:
        found = _field_error(item)
        if item["loc"][0] != "body":
            if found["field"] in parameters:  # a union reports each member's failure
                continue
            parameters.add(found["field"])
        errors.append(found)
    return _validation_problem(errors)


async def _unparsable_body(request: Request, cause: BaseException | None = None) -> Response:
    """The answer to a body that is not JSON at all, or names a key twice.

    FastAPI parses the body before it runs the route's dependencies; the contract still wants
    the caller checked first (401 -> 403 -> 400), so they are asked here (the caller, proven
    before the body was read, is not proven or counted twice).
    """
    refused = await _refusal_before_body(request)
    if refused is not None:
        return refused
    if isinstance(cause, DuplicateKey):
        return _validation_problem([{"field": cause.key, "message": "is given more than once"}])
    return _validation_problem([{"field": "body", "message": _MESSAGES["json_invalid"]}])


async def _refusal_before_body(request: Request) -> Response | None:
    try:
        principal = await current_principal(request)
        await owner(principal, request.path_params.get("user_id", ""))
    except AuthenticationFailed as error:
        return await _authentication_failed(request, error)
    except AccessDenied as error:
        return await _access_denied(request, error)
    return None


async def _task_not_found(request: Request, error: Exception) -> Response:
    return problem(404, ProblemCode.TASK_NOT_FOUND, "No such task.")


async def _stale_version(request: Request, error: Exception) -> Response:
    assert isinstance(error, StaleVersion)  # noqa: S101  # registered for this type only
    if "if-match" in request.headers:  # judged first, and by far the usual one
        detail = "The task has changed since you read it (If-Match is stale)."
    else:
        detail = "The task is at a version If-None-Match names."
    return problem(
        412,
        ProblemCode.PRECONDITION_FAILED,
        detail,
        headers={"ETag": entity_tag(error.current_version)},
    )


async def _idempotency_conflict(request: Request, error: Exception) -> Response:
    return problem(
        409,
        ProblemCode.IDEMPOTENCY_CONFLICT,
        "This Idempotency-Key was already used with a different request.",
    )


async def _idempotency_in_progress(request: Request, error: Exception) -> Response:
    return problem(
        409,
        ProblemCode.IDEMPOTENCY_IN_PROGRESS,
        "A request with this Idempotency-Key is still in progress; retry shortly.",
        headers={"Retry-After": "1"},
    )


async def _storage_unavailable(request: Request, error: Exception) -> Response:
    error_log.warning("database unavailable", extra={"error": str(error)})
    return problem(
        503,
        ProblemCode.DATABASE_UNAVAILABLE,
        "The database is not reachable right now; retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _count_limited(request: Request, limit: str) -> None:
    metrics: HttpMetrics = request.app.state.metrics
    metrics.limited.labels(limit).inc()


async def _too_many_streams(request: Request, _error: Exception) -> Response:
    _count_limited(request, "streams_per_user")
    return problem(
        429,
        ProblemCode.TOO_MANY_STREAMS,
        f"You have {MAX_STREAMS_PER_USER} event streams open, the most one user may.",
        headers={"Retry-After": str(STREAM_RETRY_AFTER_SECONDS)},
    )


async def _sync_token_expired(_request: Request, _error: Exception) -> Response:
    return problem(
        410,
        ProblemCode.SYNC_TOKEN_EXPIRED,
        "This sync token is older than the deletions still remembered; sync again without since.",
    )


async def _task_limit_reached(request: Request, error: Exception) -> Response:
    assert isinstance(error, TaskLimitReached)  # noqa: S101  # registered for this type only
    _count_limited(request, "tasks_per_user")
    return problem(
        409,
        ProblemCode.TASK_LIMIT_REACHED,
        f"You hold {error.limit} tasks, the most one user may; delete some to add more.",
    )


async def _rate_limited(request: Request, error: Exception) -> Response:
    assert isinstance(error, RateLimited)  # noqa: S101  # registered for this type only
    _count_limited(request, f"rate_{error.policy}")
    return problem(
        429,
        ProblemCode.RATE_LIMITED,
        "Too many requests; retry after the time Retry-After gives.",
        headers=error.headers,
    )


async def _write_contention(request: Request, error: Exception) -> Response:
    error_log.warning("write contention: a change gave up after losing every save race")
    return problem(
        503,
        ProblemCode.WRITE_CONTENTION,
        "The task kept changing while this change was being saved; retry shortly.",
        headers={"Retry-After": "1"},
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)  # noqa: S101  # registered for this type only
    status = error.status_code
    if status == HTTPStatus.BAD_REQUEST and isinstance(
        error.__cause__, ValueError | RecursionError
    ):
        # FastAPI's body reader: undecodable text, nesting too deep, a number too long.
        return await _unparsable_body(request)
    code = _CODES_BY_STATUS.get(status, ProblemCode.HTTP_ERROR)
    detail = {404: "No such resource.", 405: "Method not allowed for this resource."}.get(
        status, HTTPStatus(status).description
    )
    if status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        detail = error.detail  # the body limit's own sentence (adapters.http.middleware)
    headers = error.headers
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return problem(status, code, detail, headers=headers)


def _allowed_methods(request: Request) -> str:
    # Starlette's 405 names only the first route of the path; each method is a route of its own.
    routes: list[APIRoute] = getattr(request.app.state, "api_routes", [])
    return ", ".join(
        sorted(
            {  # once each: ".../tasks/changes" is also the path of ".../tasks/{task_id}"
                method
                for route in routes
                if route.matches(request.scope)[0] is not Match.NONE
                for method in route.methods or ()
            }
        )
    )


def internal_error(error: BaseException) -> Response:
    """The answer to a bug: logged with its traceback for operators; the client learns nothing."""
    error_log.error("unhandled error", exc_info=error)
    return problem(500, ProblemCode.INTERNAL_ERROR, "Something went wrong on our side.")


def install_problem_handlers(app: FastAPI) -> None:
    """Register the one mapping from errors to HTTP responses."""
    app.add_exception_handler(AuthenticationFailed, _authentication_failed)
    app.add_exception_handler(AccessDenied, _access_denied)
    app.add_exception_handler(InvalidTask, _invalid_task)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(TaskNotFound, _task_not_found)
    app.add_exception_handler(StaleVersion, _stale_version)
    app.add_exception_handler(IdempotencyConflict, _idempotency_conflict)
    app.add_exception_handler(IdempotencyInProgress, _idempotency_in_progress)
    app.add_exception_handler(StorageUnavailable, _storage_unavailable)
    app.add_exception_handler(WriteContention, _write_contention)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(TaskLimitReached, _task_limit_reached)
    app.add_exception_handler(SyncTokenExpired, _sync_token_expired)
    app.add_exception_handler(TooManyStreams, _too_many_streams)
    app.add_exception_handler(HTTPException, _http_error)
    # Anything else is answered by InternalErrorMiddleware with ``internal_error``, inside the
    # request's context, so even a 500 carries its X-Request-ID.
