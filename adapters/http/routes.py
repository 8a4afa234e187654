"""The task endpoints. Each handler: authorised owner → body/query → use case → response."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Header, Path, Query, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.conditional import entity_tag, if_match_versions, if_none_match_hits
from adapters.http.cursor import CursorCodec, InvalidCursor
from adapters.http.openapi import body_schema, problems
from adapters.http.schemas import (
    InvalidBody,
    TaskCreate,
    TaskOut,
    TaskUpdate,
    fields_given,
    read_body,
)
from application.auth import Authenticate, authorise_owner
from application.errors import AuthenticationFailed
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
    database_ready: Callable[[], Awaitable[bool]]
    cursors: CursorCodec


def services(request: Request) -> HttpServices:
    """The services bootstrap installed on this application."""
    found: HttpServices = request.app.state.services
    return found


JSON: Final = "application/json"
_TASK_LIST = TypeAdapter(list[TaskOut])
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
# Declared so that OpenAPI shows the bearer scheme and Swagger's "Authorize" works; the header
# itself is parsed below, to tell a missing token from a malformed one.
_bearer = HTTPBearer(auto_error=False, description="A JWT from the auth system")


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("malformed authorization header")
    return token


async def authorised_owner(
    request: Request,
    user_id: Annotated[str, Path(description="The user whose tasks these are")],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> UserId:
    """Authenticate the caller (401) and check the path names them (403), in that order."""
    principal = await services(request).authenticate.execute(_bearer_token(request))
    request.state.subject = principal.user_id
    return authorise_owner(principal, user_id)


Owner = Annotated[UserId, Depends(authorised_owner)]
# Parsed by hand (a malformed id is a 404, not a 400) but documented as what it is.
TaskIdPath = Annotated[
    str,
    Path(
        description="A task id: a positive 64-bit integer",
        examples=[17],
        json_schema_extra={"type": "integer", "format": "int64", "minimum": 1},
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='Change the task only if its ETag is one of these (e.g. `"3"`); else 412.',
    ),
]


def _task_id(raw: str) -> int:
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
        TaskOut.from_domain(task).model_dump_json(),
        status_code=status,
        media_type=JSON,
        headers={"ETag": entity_tag(task.version), **(headers or {})},
    )


_LIST_HEADERS: Final = {
    "X-Total-Count": {"description": "Tasks matching the filter", "schema": {"type": "integer"}},
    "Link": {
        "description": 'RFC 8288 `<…>; rel="next"` while more tasks follow',
        "schema": {"type": "string"},
    },
}
_TASK_HEADERS: Final = {
    "ETag": {"description": 'The task\'s version, e.g. `"3"`', "schema": {"type": "string"}}
}

router = APIRouter(prefix="/api/{user_id}/tasks", tags=["tasks"])


@router.get(
    "",
    response_model=list[TaskOut],
    responses={
        200: {"headers": _LIST_HEADERS},
        **problems(400, 401, 403),
    },
    summary="List the user's tasks, oldest first",
)
async def list_tasks(
    request: Request,
    owner: Owner,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = (
        DEFAULT_PAGE_SIZE
    ),
    completed: Annotated[
        Literal["true", "false"] | None, Query(description="Only complete or incomplete tasks")
    ] = None,
    cursor: Annotated[
        str | None, Query(description='From the previous page\'s `Link: <…>; rel="next"`')
    ] = None,
) -> Response:
    """Tasks in creation order (ties by id), ``limit`` at a time; follow ``Link`` for more."""
    wanted = None if completed is None else completed == "true"
    http = services(request)
    after = None
    if cursor is not None:
        try:
            after = http.cursors.decode(cursor, owner, wanted)
        except InvalidCursor as error:
            raise InvalidBody([{"field": "cursor", "message": str(error)}]) from None
    page = await http.list_tasks.execute(owner, completed=wanted, limit=limit, after=after)
    headers = {"X-Total-Count": str(page.total)}
    position = page.next_position
    if position is not None:
        query = {"limit": str(limit)}
        if completed is not None:
            query["completed"] = completed
        query["cursor"] = http.cursors.encode(owner, wanted, position)
        headers["Link"] = f'<{_tasks_path(owner)}?{urlencode(query)}>; rel="next"'
    body = _TASK_LIST.dump_json([TaskOut.from_domain(task) for task in page.tasks])
    return Response(body, media_type=JSON, headers=headers)


@router.post(
    "",
    status_code=201,
    response_model=TaskOut,
    responses={
        201: {
            "headers": {
                **_TASK_HEADERS,
                "Location": {"description": "The new task", "schema": {"type": "string"}},
                "Idempotent-Replayed": {
                    "description": "`true` when this is the stored answer to an earlier request",
                    "schema": {"type": "string"},
                },
            }
        },
        **problems(400, 401, 403, 409),
    },
    openapi_extra=body_schema(TaskCreate),
    summary="Create a task",
)
async def create_task(
    request: Request,
    owner: Owner,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1-255 printable ASCII characters; a retry with the same key and body "
            "returns the first response and creates nothing (24 hours, per user)",
        ),
    ] = None,
) -> Response:
    """Create an incomplete task; ``Location`` names it."""
    body = await read_body(request, TaskCreate)
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise InvalidBody(
            [{"field": "Idempotency-Key", "message": "must be 1-255 printable ASCII characters"}]
        )
    creation = await services(request).create_task.execute(
        owner, title=body.title, description=body.description, idempotency_key=idempotency_key
    )
    task = creation.task
    headers = {"Location": f"{_tasks_path(owner)}/{task.id}"}
    if creation.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _task_response(task, 201, headers)


@router.get(
    "/{task_id}",
    response_model=TaskOut,
    responses={
        200: {"headers": _TASK_HEADERS},
        304: {"description": "`If-None-Match` names the current version"},
        **problems(401, 403, 404),
    },
    summary="Get one task",
)
async def get_task(
    request: Request,
    owner: Owner,
    task_id: TaskIdPath,
    if_none_match: Annotated[
        str | None,
        Header(alias="If-None-Match", description="304 if the task still has this ETag"),
    ] = None,
) -> Response:
    """The task, with its version as ``ETag``."""
    task = await services(request).get_task.execute(owner, _task_id(task_id))
    if if_none_match_hits(if_none_match, task.version):
        return Response(status_code=304, headers={"ETag": entity_tag(task.version)})
    return _task_response(task)


@router.put(
    "/{task_id}",
    response_model=TaskOut,
    responses={200: {"headers": _TASK_HEADERS}, **problems(400, 401, 403, 404, 412)},
    openapi_extra=body_schema(TaskUpdate),
    summary="Update a task's title, description or completion",
)
async def update_task(
    request: Request, owner: Owner, task_id: TaskIdPath, if_match: IfMatch = None
) -> Response:
    """Fields left out keep their value; every update adds one to ``version``."""
    body = await read_body(request, TaskUpdate)
    given = fields_given(body)
    if "title" in given and given["title"] is None:
        raise InvalidTask("title", "must be a string, not null")
    if "completed" in given and given["completed"] is None:
        raise InvalidTask("completed", "must be true or false, not null")
    changes = TaskChanges.create(**given)
    task = await services(request).update_task.execute(
        owner, _task_id(task_id), changes, expected_versions=if_match_versions(if_match)
    )
    return _task_response(task)


@router.patch(
    "/{task_id}/complete",
    response_model=TaskOut,
    responses={200: {"headers": _TASK_HEADERS}, **problems(401, 403, 404, 412)},
    summary="Mark a task complete (idempotent)",
)
async def complete_task(
    request: Request, owner: Owner, task_id: TaskIdPath, if_match: IfMatch = None
) -> Response:
    """Completing a complete task changes nothing and still succeeds."""
    task = await services(request).complete_task.execute(
        owner, _task_id(task_id), expected_versions=if_match_versions(if_match)
    )
    return _task_response(task)


@router.delete(
    "/{task_id}",
    status_code=204,
    responses=problems(401, 403, 404, 412),
    summary="Delete a task for good",
)
async def delete_task(
    request: Request, owner: Owner, task_id: TaskIdPath, if_match: IfMatch = None
) -> Response:
    """Afterwards the task is gone (404)."""
    await services(request).delete_task.execute(
        owner, _task_id(task_id), expected_versions=if_match_versions(if_match)
    )
    return Response(status_code=204)
