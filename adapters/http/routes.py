"""The task endpoints. Each handler: authorised owner → body/query → use case → response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.schemas import TaskCreate, TaskOut, TaskUpdate, fields_given, read_body
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


def services(request: Request) -> HttpServices:
    """The services bootstrap installed on this application."""
    found: HttpServices = request.app.state.services
    return found


JSON: Final = "application/json"
_TASK_LIST = TypeAdapter(list[TaskOut])
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
TaskIdPath = Annotated[
    str, Path(description="A task id: a positive 64-bit integer", examples=["17"])
]


def _task_id(raw: str) -> int:
    task_id = parse_task_id(raw)
    if task_id is None:
        raise TaskNotFound(raw)
    return task_id


def _task_response(
    task: Task, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        TaskOut.from_domain(task).model_dump_json(),
        status_code=status,
        media_type=JSON,
        headers={"ETag": f'"{task.version}"', **(headers or {})},
    )


def _body_schema(model: type[Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    401: {"description": "Missing, invalid or expired token"},
    403: {"description": "The path names another user"},
}
_TASK_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    **_ERRORS,
    404: {"description": "No such task of this user"},
}

router = APIRouter(prefix="/api/{user_id}/tasks", tags=["tasks"])


@router.get(
    "",
    response_model=list[TaskOut],
    responses={**_ERRORS, 400: {"description": "Invalid query"}},
    summary="List the user's tasks, oldest first",
)
async def list_tasks(
    request: Request,
    owner: Owner,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    completed: Annotated[
        Literal["true", "false"] | None, Query(description="Only complete or incomplete tasks")
    ] = None,
) -> Response:
    """Tasks in creation order (ties by id), at most ``limit`` of them."""
    tasks = await services(request).list_tasks.execute(
        owner, completed=None if completed is None else completed == "true", limit=limit
    )
    body = _TASK_LIST.dump_json([TaskOut.from_domain(task) for task in tasks])
    return Response(body, media_type=JSON)


@router.post(
    "",
    status_code=201,
    response_model=TaskOut,
    responses={**_ERRORS, 400: {"description": "Invalid body"}},
    openapi_extra=_body_schema(TaskCreate),
    summary="Create a task",
)
async def create_task(request: Request, owner: Owner) -> Response:
    """Create an incomplete task; ``Location`` names it."""
    body = await read_body(request, TaskCreate)
    task = await services(request).create_task.execute(
        owner, title=body.title, description=body.description
    )
    location = f"/api/{quote(owner, safe='')}/tasks/{task.id}"
    return _task_response(task, 201, {"Location": location})


@router.get("/{task_id}", response_model=TaskOut, responses=_TASK_ERRORS, summary="Get one task")
async def get_task(request: Request, owner: Owner, task_id: TaskIdPath) -> Response:
    """The task, with its version as ``ETag``."""
    task = await services(request).get_task.execute(owner, _task_id(task_id))
    return _task_response(task)


@router.put(
    "/{task_id}",
    response_model=TaskOut,
    responses={**_TASK_ERRORS, 400: {"description": "Invalid body"}},
    openapi_extra=_body_schema(TaskUpdate),
    summary="Update a task's title, description or completion",
)
async def update_task(request: Request, owner: Owner, task_id: TaskIdPath) -> Response:
    """Fields left out keep their value; every update adds one to ``version``."""
    body = await read_body(request, TaskUpdate)
    given = fields_given(body)
    if "title" in given and given["title"] is None:
        raise InvalidTask("title", "must be a string, not null")
    if "completed" in given and given["completed"] is None:
        raise InvalidTask("completed", "must be true or false, not null")
    changes = TaskChanges.create(**given)
    task = await services(request).update_task.execute(owner, _task_id(task_id), changes)
    return _task_response(task)


@router.patch(
    "/{task_id}/complete",
    response_model=TaskOut,
    responses=_TASK_ERRORS,
    summary="Mark a task complete (idempotent)",
)
async def complete_task(request: Request, owner: Owner, task_id: TaskIdPath) -> Response:
    """Completing a complete task changes nothing and still succeeds."""
    task = await services(request).complete_task.execute(owner, _task_id(task_id))
    return _task_response(task)


@router.delete(
    "/{task_id}", status_code=204, responses=_TASK_ERRORS, summary="Delete a task for good"
)
async def delete_task(request: Request, owner: Owner, task_id: TaskIdPath) -> Response:
    """Afterwards the task is gone (404)."""
    await services(request).delete_task.execute(owner, _task_id(task_id))
    return Response(status_code=204)
