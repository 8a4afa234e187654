"""Errors as ``application/problem+json`` (RFC 9457), and the one mapping of errors to HTTP.

Every response that is not a success goes through ``problem()``: same shape, a stable ``code``,
the request id, and never a stack trace, SQL or a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Final

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.conditional import entity_tag
from adapters.http.context import request_id_var
from adapters.http.schemas import InvalidBody
from application.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    IdempotencyInProgress,
    StorageUnavailable,
    TokenExpired,
)
from domain.errors import AccessDenied, InvalidTask, StaleVersion, TaskNotFound

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
RETRY_AFTER_SECONDS: Final = 2

security_log = logging.getLogger("taskapi.security")
error_log = logging.getLogger("taskapi.errors")

_CODES_BY_STATUS: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    503: "service_unavailable",
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build a problem+json response."""
    body: dict[str, object] = {
        "type": f"/problems/{code.replace('_', '-')}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id_var.get(),
    }
    if errors:
        body["errors"] = errors
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def log_security_event(request: Request, status: int, reason: str, subject: str | None) -> None:
    """One structured line per refused request (401/403). Never the token or the secret."""
    security_log.warning(
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
    log_security_event(request, 401, error.reason, error.subject)
    if isinstance(error, TokenExpired):
        code, detail, challenge = "token_expired", "The token has expired.", "invalid_token"
    elif error.reason == "missing bearer token":
        code, detail, challenge = "unauthorized", "A bearer token is required.", None
    else:
        code, detail, challenge = "unauthorized", "The bearer token is not valid.", "invalid_token"
    www_authenticate = 'Bearer realm="taskapi"'
    if challenge:
        www_authenticate += f', error="{challenge}", error_description="{detail}"'
    return problem(401, code, detail, headers={"WWW-Authenticate": www_authenticate})


async def _access_denied(request: Request, error: Exception) -> Response:
    subject = getattr(request.state, "subject", None)
    log_security_event(request, 403, "path user is not the token's user", subject)
    return problem(403, "forbidden", "You may only access your own tasks.")


async def _invalid_task(request: Request, error: Exception) -> Response:
    assert isinstance(error, InvalidTask)  # noqa: S101  # registered for this type only
    return problem(
        400,
        "validation_error",
        f"{error.field} {error.message}",
        errors=[{"field": error.field, "message": error.message}],
    )


async def _invalid_body(request: Request, error: Exception) -> Response:
    assert isinstance(error, InvalidBody)  # noqa: S101  # registered for this type only
    first = error.errors[0] if error.errors else {"field": "body", "message": "is invalid"}
    return problem(
        400, "validation_error", f"{first['field']} {first['message']}", errors=error.errors
    )


async def _invalid_query(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)  # noqa: S101  # registered for this type only
    errors = [
        {"field": str(item["loc"][-1]), "message": str(item["msg"])} for item in error.errors()
    ]
    first = errors[0] if errors else {"field": "query", "message": "is invalid"}
    return problem(400, "validation_error", f"{first['field']} {first['message']}", errors=errors)


async def _task_not_found(request: Request, error: Exception) -> Response:
    return problem(404, "task_not_found", "No such task.")


async def _stale_version(request: Request, error: Exception) -> Response:
    assert isinstance(error, StaleVersion)  # noqa: S101  # registered for this type only
    return problem(
        412,
        "precondition_failed",
        "The task has changed since you read it (If-Match is stale).",
        headers={"ETag": entity_tag(error.current_version)},
    )


async def _idempotency_conflict(request: Request, error: Exception) -> Response:
    return problem(
        409,
        "idempotency_conflict",
        "This Idempotency-Key was already used with a different request.",
    )


async def _idempotency_in_progress(request: Request, error: Exception) -> Response:
    return problem(
        409,
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still in progress; retry shortly.",
        headers={"Retry-After": "1"},
    )


async def _storage_unavailable(request: Request, error: Exception) -> Response:
    error_log.warning("database unavailable", extra={"error": str(error)})
    return problem(
        503,
        "database_unavailable",
        "The database is not reachable right now; retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)  # noqa: S101  # registered for this type only
    status = error.status_code
    code = _CODES_BY_STATUS.get(status, "http_error")
    detail = {404: "No such resource.", 405: "Method not allowed for this resource."}.get(
        status, HTTPStatus(status).description
    )
    return problem(status, code, detail, headers=error.headers)


def internal_error(error: BaseException) -> Response:
    """The answer to a bug: logged with its traceback for operators; the client learns nothing."""
    error_log.error("unhandled error", exc_info=error)
    return problem(500, "internal_error", "Something went wrong on our side.")


def install_problem_handlers(app: FastAPI) -> None:
    """Register the one mapping from errors to HTTP responses."""
    app.add_exception_handler(AuthenticationFailed, _authentication_failed)
    app.add_exception_handler(AccessDenied, _access_denied)
    app.add_exception_handler(InvalidTask, _invalid_task)
    app.add_exception_handler(InvalidBody, _invalid_body)
    app.add_exception_handler(RequestValidationError, _invalid_query)
    app.add_exception_handler(TaskNotFound, _task_not_found)
    app.add_exception_handler(StaleVersion, _stale_version)
    app.add_exception_handler(IdempotencyConflict, _idempotency_conflict)
    app.add_exception_handler(IdempotencyInProgress, _idempotency_in_progress)
    app.add_exception_handler(StorageUnavailable, _storage_unavailable)
    app.add_exception_handler(HTTPException, _http_error)
    # Anything else is answered by RequestIdMiddleware with ``internal_error``, inside the
    # request's context, so even a 500 carries its X-Request-ID.
