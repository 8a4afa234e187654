"""The task endpoints: typed parameters and bodies in, a use case, the task out.

Responses are returned as ``Response`` objects holding JSON written by ``task_json`` (FastAPI's
documented way to skip its re-validation of what it returns); ``response_model`` documents them.
"""

from __future__ import annotations

from typing import Annotated, Final
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Depends, Header, Query
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.sse import EventSourceResponse
from pydantic import BeforeValidator
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

from adapters.http.conditional import (
    entity_tag,
    if_match_versions,
    if_none_match_hits,
    write_conditions,
)
from adapters.http.cursor import CursorCodec, InvalidCursor, SyncTokenCodec
from adapters.http.dependencies import (
    AuthenticatedFirst,
    Owner,
    TaskId,
    one_value_each,
    provided,
)
from adapters.http.openapi import HEADERS, problems
from adapters.http.schemas import (
    JSON,
    ChangesOut,
    ChangesQuery,
    TagCountOut,
    TaskCreate,
    TaskOut,
    TaskQuery,
    TaskUpdate,
    changes_json,
    single_valued,
    task_json,
    tasks_json,
    utc_timestamp,
)
from application.listing import ListPosition, SortOrder, TaskFilter
from application.tasks import (
    CompleteTask,
    CreateTask,
    DeleteTask,
    GetTask,
    ListChanges,
    ListTags,
    ListTasks,
    UpdateTask,
)
from domain.errors import StaleVersion
from domain.task import Priority, Task

router = APIRouter(prefix="/api/{user_id}/tasks", tags=["tasks"], route_class=AuthenticatedFirst)
tags_router = APIRouter(
    prefix="/api/{user_id}/tags", tags=["tasks"], route_class=AuthenticatedFirst
)

IfMatch = Annotated[
    str | SkipJsonSchema[None],
    Header(
        alias="If-Match",
        description='Change the task only if its ETag is one of these (e.g. `"3"`); else 412',
    ),
]
IfNoneMatch = Annotated[
    str | SkipJsonSchema[None],
    Header(alias="If-None-Match", description="304 while the task still has this ETag"),
]
UnlessMatch = Annotated[
    str | SkipJsonSchema[None],
    Header(
        alias="If-None-Match",
        description="Change the task only if its ETag is none of these (`*`: never); else 412",
    ),
]
ReadIfMatch = Annotated[
    str | SkipJsonSchema[None],
    Header(alias="If-Match", description="412 unless the task's ETag is one of these"),
]
_PRINTABLE_ASCII: Final = r"^[\x20-\x7e]+$"
IdempotencyKey = Annotated[
    str | SkipJsonSchema[None],
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=_PRINTABLE_ASCII,
        # Declared again for the document: the optional header's null branch, skipped from the
        # schema, takes the pattern with it.
        json_schema_extra={"pattern": _PRINTABLE_ASCII},
        description="1-255 printable ASCII characters; a retry with the same key and body returns "
        "the first response and creates nothing (24 hours, per user)",
    ),
    # Whitespace around a field value is not part of it (RFC 9110, 5.5): a proxy may trim it,
    # and the retry must still name the same key.
    BeforeValidator(lambda value: value.strip(" \t") if isinstance(value, str) else value),
]
Cursors = Annotated[CursorCodec, Depends(provided("cursors", CursorCodec))]
SyncTokens = Annotated[SyncTokenCodec, Depends(provided("sync_tokens", SyncTokenCodec))]

_ONE_TASK: Final = {"headers": {"ETag": HEADERS["ETag"]}}


def _tasks_path(owner: str) -> str:
    segment = quote(owner, safe="")
    if segment in (".", ".."):  # dot segments, which clients remove: "/api/../tasks" is "/tasks"
        segment = segment.replace(".", "%2E")
    return f"/api/{segment}/tasks"


def _task_response(
    task: Task, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        task_json(task),
        status_code=status,
        media_type=JSON,
        headers={"ETag": entity_tag(task.version), **(headers or {})},
    )


@router.get(
    "",
    operation_id="listTasks",
    dependencies=[Depends(one_value_each(*single_valued(TaskQuery)))],
    summary="List the user's tasks: filtered, searched, sorted, a page at a time",
    response_model=list[TaskOut],
    responses={
        200: {"headers": {"X-Total-Count": HEADERS["X-Total-Count"], "Link": HEADERS["Link"]}},
        **problems(400, 401, 403),
    },
)
async def list_tasks(
    owner: Owner,
    query: Annotated[TaskQuery, Query()],
    list_tasks: Annotated[ListTasks, Depends(provided("list_tasks", ListTasks))],
    cursors: Cursors,
) -> Response:
    """Tasks matching every filter given, in `sort` order (ties by id); follow `Link` for more."""
    where = TaskFilter.create(
        completed=query.completed,
        priorities=query.priority,
        tags=query.tag,
        due_before=query.due_before,
        due_after=query.due_after,
        q=query.q,
    )
    order = SortOrder.parse(query.sort)
    after = None
    if query.cursor is not None:
        try:
            after = cursors.decode(query.cursor, owner, where, order)
        except InvalidCursor as error:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", "cursor"), "msg": str(error)}]
            ) from None
    page = await list_tasks.execute(owner, where=where, order=order, limit=query.limit, after=after)
    body, shown = tasks_json(page.tasks)
    headers = {"X-Total-Count": str(page.total)}
    # Stopped at the size cap, or another page follows: the next starts after the last shown.
    if shown and (shown < len(page.tasks) or page.has_more):
        position = ListPosition.after(page.tasks[shown - 1], order)
        cursor = cursors.encode(owner, where, order, position)
        headers["Link"] = f'<{_next_page(owner, query, where, cursor)}>; rel="next"'
    return Response(body, media_type=JSON, headers=headers)


def _next_page(owner: str, query: TaskQuery, where: TaskFilter, cursor: str) -> str:
    """The URL of the next page: the same listing, from the cursor."""
    link: list[tuple[str, str]] = [("limit", str(query.limit))]
    if where.completed is not None:
        link.append(("completed", "true" if where.completed else "false"))
    if where.priorities:
        link.append(("priority", ",".join(p for p in Priority if p in where.priorities)))
    link += [("tag", tag) for tag in where.tags]
    if where.due_before is not None:
        link.append(("due_before", utc_timestamp(where.due_before)))
    if where.due_after is not None:
        link.append(("due_after", utc_timestamp(where.due_after)))
    if query.q is not None:
        link.append(("q", query.q))
    if query.sort != "created_at":
        link.append(("sort", query.sort))
    link.append(("cursor", cursor))
    return f"{_tasks_path(owner)}?{urlencode(link)}"


@router.get(
    "/changes",
    operation_id="listChanges",
    dependencies=[Depends(one_value_each(*single_valued(ChangesQuery)))],
    summary="What changed since a sync token: the feed a second device keeps up with",
    response_model=ChangesOut,
    responses=problems(400, 401, 403, 410),
)
async def list_changes(
    owner: Owner,
    query: Annotated[ChangesQuery, Query()],
    list_changes: Annotated[ListChanges, Depends(provided("list_changes", ListChanges))],
    tokens: SyncTokens,
) -> Response:
    """Changes in commit order, each task once in its latest state; deletions for 30 days.

    Follow `next` until `has_more` is false, then ask again later from the last `next`: no
    change is ever missed. A `since` older than the remembered deletions is a 410: sync again
    without it.
    """
    since = None
    if query.since is not None:
        try:
            since = tokens.decode(query.since, owner)
        except InvalidCursor as error:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", "since"), "msg": str(error)}]
            ) from None
    page = await list_changes.execute(owner, since=since, limit=query.limit)
    parts, shown = changes_json(page.changes)
    has_more = page.has_more or shown < len(page.changes)
    next_token = tokens.encode(owner, page.position_after(shown))
    body = b'{"changes":[%b],"next":%b,"has_more":%b}' % (
        b",".join(parts),
        orjson.dumps(next_token),
        b"true" if has_more else b"false",
    )
    return Response(body, media_type=JSON)


@router.post(
    "",
    operation_id="createTask",
    summary="Create a task",
    status_code=201,
    response_model=TaskOut,
    responses={
        201: {
            "headers": {
                "ETag": HEADERS["ETag"],
                "Location": HEADERS["Location"],
                "Idempotent-Replayed": HEADERS["Idempotent-Replayed"],
            }
        },
        **problems(400, 401, 403, 409, 413),
    },
)
async def create_task(
    owner: Owner,
    body: TaskCreate,
    create_task: Annotated[CreateTask, Depends(provided("create_task", CreateTask))],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create an incomplete task; `Location` names it."""
    creation = await create_task.execute(
        owner,
        title=body.title,
        description=body.description,
        due_at=body.due_at,
        priority=body.priority,
        tags=body.tags,
        idempotency_key=idempotency_key,
    )
    task = creation.task
    headers = {"Location": f"{_tasks_path(owner)}/{task.id}"}
    if creation.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _task_response(task, 201, headers)


@router.get(
    "/{task_id}",
    operation_id="getTask",
    summary="Get one task",
    response_model=TaskOut,
    responses={
        200: _ONE_TASK,
        304: {"description": "`If-None-Match` names the current version", **_ONE_TASK},
        **problems(401, 403, 404, 412),
    },
)
async def get_task(
    owner: Owner,
    task_id: TaskId,
    get_task: Annotated[GetTask, Depends(provided("get_task", GetTask))],
    if_none_match: IfNoneMatch = None,
    if_match: ReadIfMatch = None,
) -> Response:
    """The task, with its version as `ETag`; 304 if `If-None-Match` names that version."""
    task = await get_task.execute(owner, task_id)
    expected = if_match_versions(if_match)
    if expected is not None and task.version not in expected:  # RFC 9110 13.2.2: before 304
        raise StaleVersion(task.version)
    if if_none_match_hits(if_none_match, task.version):
        return Response(status_code=304, headers={"ETag": entity_tag(task.version)})
    return _task_response(task)


@router.put(
    "/{task_id}",
    operation_id="updateTask",
    summary="Update any of a task's fields",
    response_model=TaskOut,
    responses={200: _ONE_TASK, **problems(400, 401, 403, 404, 412, 413)},
)
async def update_task(
    owner: Owner,
    task_id: TaskId,
    body: TaskUpdate,
    update_task: Annotated[UpdateTask, Depends(provided("update_task", UpdateTask))],
    *,
    if_match: IfMatch = None,
    if_none_match: UnlessMatch = None,
) -> Response:
    """Fields left out keep their value; every update adds one to `version`."""
    expected, refused = write_conditions(if_match, if_none_match)
    task = await update_task.execute(
        owner, task_id, body.changes, expected_versions=expected, refused_versions=refused
    )
    return _task_response(task)


@router.patch(
    "/{task_id}/complete",
    operation_id="completeTask",
    summary="Mark a task complete (idempotent)",
    response_model=TaskOut,
    responses={200: _ONE_TASK, **problems(401, 403, 404, 412)},
)
async def complete_task(
    owner: Owner,
    task_id: TaskId,
    complete_task: Annotated[CompleteTask, Depends(provided("complete_task", CompleteTask))],
    if_match: IfMatch = None,
    if_none_match: UnlessMatch = None,
) -> Response:
    """Completing a complete task changes nothing and still succeeds."""
    expected, refused = write_conditions(if_match, if_none_match)
    task = await complete_task.execute(
        owner, task_id, expected_versions=expected, refused_versions=refused
    )
    return _task_response(task)


@router.delete(
    "/{task_id}",
    operation_id="deleteTask",
    summary="Delete a task for good",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted"}, **problems(401, 403, 404, 412)},
)
async def delete_task(
    owner: Owner,
    task_id: TaskId,
    delete_task: Annotated[DeleteTask, Depends(provided("delete_task", DeleteTask))],
    if_match: IfMatch = None,
    if_none_match: UnlessMatch = None,
) -> Response:
    """Afterwards the task is gone (404)."""
    expected, refused = write_conditions(if_match, if_none_match)
    await delete_task.execute(owner, task_id, expected_versions=expected, refused_versions=refused)
    return Response(status_code=204)


@tags_router.get(
    "",
    operation_id="listTags",
    summary="List the user's tags, with how many tasks carry each",
    response_model=list[TagCountOut],
    responses=problems(401, 403),
)
async def list_tags(
    owner: Owner,
    list_tags: Annotated[ListTags, Depends(provided("list_tags", ListTags))],
) -> Response:
    """Every tag the user's tasks carry, sorted by tag."""
    tags = await list_tags.execute(owner)
    return Response(orjson.dumps([{"tag": t.tag, "count": t.count} for t in tags]), media_type=JSON)


def answer_head(router: APIRouter) -> None:
    """Give each ``GET`` route a ``HEAD`` twin: the same answer, headers only (RFC 9110, 9.3.2).

    Monitors and ``curl -I`` ask so; uvicorn drops the body. Left out of the OpenAPI document,
    where a second operation would share the ``GET``'s id; an event stream has no end to answer.
    """
    for route in list(router.routes):
        if not isinstance(route, APIRoute) or route.methods != {"GET"}:
            continue
        if route.response_class is EventSourceResponse:
            continue
        router.add_api_route(
            route.path.removeprefix(router.prefix),
            route.endpoint,
            methods=["HEAD"],
            response_model=route.response_model,
            status_code=route.status_code,
            response_class=route.response_class,
            dependencies=route.dependencies,
            name=f"{route.name}_head",
            include_in_schema=False,
        )


answer_head(router)
answer_head(tags_router)
