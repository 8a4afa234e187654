"""The task endpoints. Each handler: authorised owner → body/query → use case → response.

Handlers take the ``Request`` and return a ``Response``, and are dispatched by ``LeanRoute``:
FastAPI documents them (OpenAPI, from the declarations in ``openapi_extra``) but does not solve
dependencies or validate parameters per request. That keeps the contract's order of checks
(401 → 403 → 400 → 404) in plain code, and measured, it is what brings the service within reach of
a bare Starlette server's throughput (see README, "Performance").
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import request_response

from adapters.http.conditional import entity_tag, if_match_versions, if_none_match_hits
from adapters.http.cursor import CursorCodec, InvalidCursor
from adapters.http.openapi import BEARER_SECURITY, body_schema, parameters, problems
from adapters.http.schemas import (
    InvalidBody,
    TaskCreate,
    TaskUpdate,
    fields_given,
    read_body,
    task_json,
    tasks_json,
)
from application.auth import Authenticate, authorise_owner
from application.errors import AuthenticationFailed
from application.ports import HealthProbe
from application.tasks import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CompleteTask,
    CreateTask,
    DeleteTask,
    GetTask,
    ListTasks,
    UpdateTask,
)
from domain.errors import InvalidTask, TaskNotFound
from domain.task import Task, TaskChanges, UserId, parse_task_id


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpServices:
    """What the HTTP adapter needs, built once by bootstrap and kept on ``app.state``."""

    authenticate: Authenticate
    list_tasks: ListTasks
    create_task: CreateTask
    get_task: GetTask
    update_task: UpdateTask
    complete_task: CompleteTask
    delete_task: DeleteTask
    database: HealthProbe
    cursors: CursorCodec


def services(request: Request) -> HttpServices:
    """The services bootstrap installed on this application."""
    found: HttpServices = request.app.state.services
    return found


class LeanRoute(APIRoute):
    """An ``APIRoute`` whose endpoint is called with the request and returns the response.

    FastAPI's documented extension point for custom route classes: the declaration still feeds
    the OpenAPI document, while each request goes straight to the endpoint, as with a Starlette
    ``Route``.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:  # noqa: ANN401  # APIRoute's own keyword arguments
        super().__init__(path, endpoint, **kwargs)
        self.app = request_response(endpoint)


JSON: Final = "application/json"
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
_LIMIT = re.compile(r"[0-9]{1,4}")


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("malformed authorization header")
    return token


async def authorised_owner(request: Request) -> UserId:
    """Authenticate the caller (401) and check the path names them (403), in that order."""
    principal = await services(request).authenticate.execute(_bearer_token(request))
    request.state.subject = principal.user_id
    return authorise_owner(principal, request.path_params["user_id"])


def _task_id(request: Request) -> int:
    raw = request.path_params["task_id"]
    task_id = parse_task_id(raw)
    if task_id is None:
        raise TaskNotFound(raw)
    return task_id


def _tasks_path(owner: str) -> str:
    return f"/api/{quote(owner, safe='')}/tasks"


def _task_response(
    task: Task, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        task_json(task),
        status_code=status,
        media_type=JSON,
        headers={"ETag": entity_tag(task.version), **(headers or {})},
    )


def _invalid(field: str, message: str) -> InvalidBody:
    return InvalidBody([{"field": field, "message": message}])


def _query(request: Request) -> tuple[int, str | None, str | None]:
    """``limit``, ``completed`` and ``cursor`` of a listing, checked (400 when invalid)."""
    params = request.query_params
    raw_limit = params.get("limit")
    limit = DEFAULT_PAGE_SIZE
    if raw_limit is not None:
        if not _LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
            raise _invalid("limit", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
        limit = int(raw_limit)
    completed = params.get("completed")
    if completed not in (None, "true", "false"):
        raise _invalid("completed", "must be true or false")
    return limit, completed, params.get("cursor")


async def list_tasks(request: Request) -> Response:
    """Tasks in creation order (ties by id), ``limit`` at a time; follow ``Link`` for more."""
    owner = await authorised_owner(request)
    limit, completed, cursor = _query(request)
    wanted = None if completed is None else completed == "true"
    http = services(request)
    after = None
    if cursor is not None:
        try:
            after = http.cursors.decode(cursor, owner, wanted)
        except InvalidCursor as error:
            raise _invalid("cursor", str(error)) from None
    page = await http.list_tasks.execute(owner, completed=wanted, limit=limit, after=after)
    headers = {"X-Total-Count": str(page.total)}
    position = page.next_position
    if position is not None:
        query = {"limit": str(limit)}
        if completed is not None:
            query["completed"] = completed
        query["cursor"] = http.cursors.encode(owner, wanted, position)
        headers["Link"] = f'<{_tasks_path(owner)}?{urlencode(query)}>; rel="next"'
    return Response(tasks_json(page.tasks), media_type=JSON, headers=headers)


async def create_task(request: Request) -> Response:
    """Create an incomplete task; ``Location`` names it."""
    owner = await authorised_owner(request)
    body = await read_body(request, TaskCreate)
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise _invalid("Idempotency-Key", "must be 1-255 printable ASCII characters")
    creation = await services(request).create_task.execute(
        owner, title=body.title, description=body.description, idempotency_key=idempotency_key
    )
    task = creation.task
    headers = {"Location": f"{_tasks_path(owner)}/{task.id}"}
    if creation.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _task_response(task, 201, headers)


async def get_task(request: Request) -> Response:
    """The task, with its version as ``ETag``; 304 if ``If-None-Match`` names that version."""
    owner = await authorised_owner(request)
    task = await services(request).get_task.execute(owner, _task_id(request))
    if if_none_match_hits(request.headers.get("if-none-match"), task.version):
        return Response(status_code=304, headers={"ETag": entity_tag(task.version)})
    return _task_response(task)


async def update_task(request: Request) -> Response:
    """Fields left out keep their value; every update adds one to ``version``."""
    owner = await authorised_owner(request)
    body = await read_body(request, TaskUpdate)
    given = fields_given(body)
    if "title" in given and given["title"] is None:
        raise InvalidTask("title", "must be a string, not null")
    if "completed" in given and given["completed"] is None:
        raise InvalidTask("completed", "must be true or false, not null")
    changes = TaskChanges.create(**given)
    task = await services(request).update_task.execute(
        owner,
        _task_id(request),
        changes,
        expected_versions=if_match_versions(request.headers.get("if-match")),
    )
    return _task_response(task)


async def complete_task(request: Request) -> Response:
    """Completing a complete task changes nothing and still succeeds."""
    owner = await authorised_owner(request)
    task = await services(request).complete_task.execute(
        owner,
        _task_id(request),
        expected_versions=if_match_versions(request.headers.get("if-match")),
    )
    return _task_response(task)


async def delete_task(request: Request) -> Response:
    """Afterwards the task is gone (404)."""
    owner = await authorised_owner(request)
    await services(request).delete_task.execute(
        owner,
        _task_id(request),
        expected_versions=if_match_versions(request.headers.get("if-match")),
    )
    return Response(status_code=204)


# What OpenAPI says of the parameters the handlers read themselves.
_USER = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "description": "The user whose tasks these are: the token's user",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_TASK = {
    "name": "task_id",
    "in": "path",
    "required": True,
    "description": "A task id: a positive 64-bit integer (anything else is a 404)",
    "schema": {"type": "integer", "format": "int64", "minimum": 1},
    "example": 17,
}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "description": 'Change the task only if its ETag is one of these (e.g. `"3"`); else 412',
    "schema": {"type": "string"},
}
_LIST_QUERY = [
    {
        "name": "limit",
        "in": "query",
        "description": "Page size",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 50},
    },
    {
        "name": "completed",
        "in": "query",
        "description": "Only complete (`true`) or incomplete (`false`) tasks",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
    {
        "name": "cursor",
        "in": "query",
        "description": 'Opaque; from the previous page\'s `Link: <…>; rel="next"`',
        "schema": {"type": "string"},
    },
]
_IDEMPOTENCY_KEY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "description": "1-255 printable ASCII characters; a retry with the same key and body returns "
    "the first response and creates nothing (24 hours, per user)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "description": "304 while the task still has this ETag",
    "schema": {"type": "string"},
}
_ETAG = {"ETag": {"description": 'The task\'s version, e.g. `"3"`', "schema": {"type": "string"}}}
_LIST_HEADERS = {
    "X-Total-Count": {"description": "Tasks matching the filter", "schema": {"type": "integer"}},
    "Link": {
        "description": 'RFC 8288 `<…>; rel="next"` while more tasks follow',
        "schema": {"type": "string"},
    },
}
_CREATED_HEADERS = {
    **_ETAG,
    "Location": {"description": "The new task", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request",
        "schema": {"type": "string"},
    },
}


def _task_json(description: str, headers: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": headers,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/TaskOut"}}},
    }


def register_routes(app: FastAPI) -> None:
    """Add the task endpoints to ``app`` (on its own router: no nested router per request)."""
    tasks = "/api/{user_id}/tasks"
    one = tasks + "/{task_id}"

    def add(
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        method: str,
        *,
        summary: str,
        responses: dict[int | str, dict[str, Any]],
        params: list[dict[str, Any]],
        body: type[Any] | None = None,
        status: int = 200,
    ) -> None:
        extra = {**parameters(params), **BEARER_SECURITY, **(body_schema(body) if body else {})}
        app.router.add_api_route(
            path,
            endpoint,
            methods=[method],
            status_code=status,
            summary=summary,
            tags=["tasks"],
            responses=responses,
            openapi_extra=extra,
            route_class_override=LeanRoute,
        )

    add(
        tasks,
        list_tasks,
        "GET",
        summary="List the user's tasks, oldest first",
        responses={
            200: {
                "description": "A page of tasks",
                "headers": _LIST_HEADERS,
                "content": {
                    JSON: {
                        "schema": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/TaskOut"},
                        }
                    }
                },
            },
            **problems(400, 401, 403),
        },
        params=[_USER, *_LIST_QUERY],
    )
    add(
        tasks,
        create_task,
        "POST",
        summary="Create a task",
        responses={
            201: _task_json("The new task", _CREATED_HEADERS),
            **problems(400, 401, 403, 409),
        },
        params=[_USER, _IDEMPOTENCY_KEY_HEADER],
        body=TaskCreate,
        status=201,
    )
    add(
        one,
        get_task,
        "GET",
        summary="Get one task",
        responses={
            200: _task_json("The task", _ETAG),
            304: {"description": "`If-None-Match` names the current version"},
            **problems(401, 403, 404),
        },
        params=[_USER, _TASK, _IF_NONE_MATCH],
    )
    add(
        one,
        update_task,
        "PUT",
        summary="Update a task's title, description or completion",
        responses={200: _task_json("The updated task", _ETAG), **problems(400, 401, 403, 404, 412)},
        params=[_USER, _TASK, _IF_MATCH],
        body=TaskUpdate,
    )
    add(
        one + "/complete",
        complete_task,
        "PATCH",
        summary="Mark a task complete (idempotent)",
        responses={200: _task_json("The completed task", _ETAG), **problems(401, 403, 404, 412)},
        params=[_USER, _TASK, _IF_MATCH],
    )
    add(
        one,
        delete_task,
        "DELETE",
        summary="Delete a task for good",
        responses={204: {"description": "Deleted"}, **problems(401, 403, 404, 412)},
        params=[_USER, _TASK, _IF_MATCH],
        status=204,
    )
