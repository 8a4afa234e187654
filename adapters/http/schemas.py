"""Request and response bodies: their schemas, how requests are read, how tasks are written.

Bodies are parsed by hand (not as FastAPI body parameters) so that authentication and the
ownership check run first, as the contract orders them (401 → 403 → 400), and so that every
validation failure, malformed JSON included, is a 400.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request

from domain.task import Task


def utc_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC, always with microseconds and ``Z`` (pydantic's format promises neither)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def _stamp(value: datetime) -> datetime | str:
    # orjson writes a UTC datetime as ISO 8601 with "Z" in C, but drops a zero fraction: that one
    # case in a million (and any other zone) is formatted here instead.
    if value.microsecond and value.tzinfo is UTC:
        return value
    return utc_timestamp(value)


def _task_document(task: Task) -> dict[str, Any]:
    completed_at = task.completed_at
    return {
        "id": task.id,
        "user_id": task.owner,
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
        "completed_at": None if completed_at is None else _stamp(completed_at),
        "created_at": _stamp(task.created_at),
        "updated_at": _stamp(task.updated_at),
        "version": task.version,
    }


_ORJSON_OPTIONS: Final = orjson.OPT_UTC_Z


def task_json(task: Task) -> bytes:
    """A task as the API shows it (the ``TaskOut`` schema), as JSON."""
    return orjson.dumps(_task_document(task), option=_ORJSON_OPTIONS)


def tasks_json(tasks: Iterable[Task]) -> bytes:
    """A list of tasks as JSON."""
    return orjson.dumps([_task_document(task) for task in tasks], option=_ORJSON_OPTIONS)


class TaskOut(BaseModel):
    """A task as the API shows it: the documented schema of what ``task_json`` writes.

    Responses are written by ``task_json`` (three times faster than building and dumping this
    model for every task of a page); the e2e tests validate every task they receive against
    this model, so the two cannot drift apart.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 17,
                    "user_id": "alice",
                    "title": "Buy groceries",
                    "description": None,
                    "completed": False,
                    "completed_at": None,
                    "created_at": "2026-01-14T09:30:00.123456Z",
                    "updated_at": "2026-01-14T09:30:00.123456Z",
                    "version": 1,
                }
            ]
        }
    )

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    completed_at: datetime | None = Field(description="UTC, with microseconds; null if open")
    created_at: datetime = Field(description="UTC, with microseconds")
    updated_at: datetime = Field(description="UTC, with microseconds")
    version: int = Field(description="1 at creation, one more with every change; the ETag")


_STRICT_BODY = ConfigDict(extra="forbid", strict=True)


class TaskCreate(BaseModel):
    """Body of ``POST /api/{user_id}/tasks``."""

    model_config = ConfigDict(
        **_STRICT_BODY,
        json_schema_extra={"examples": [{"title": "Buy groceries", "description": "Milk, eggs"}]},
    )

    title: StrictStr = Field(description="1-500 characters after trimming; no control characters")
    description: StrictStr | None = Field(
        default=None, description="Up to 5000 characters; tab and line breaks allowed"
    )


class TaskUpdate(BaseModel):
    """Body of ``PUT /api/{user_id}/tasks/{task_id}``: any of the fields, at least one."""

    model_config = ConfigDict(
        **_STRICT_BODY,
        json_schema_extra={"examples": [{"title": "Buy almond milk"}, {"completed": True}]},
    )

    title: StrictStr | None = Field(default=None, description="New title; may not be null")
    description: StrictStr | None = Field(default=None, description="New description, or null")
    completed: StrictBool | None = Field(default=None, description="true completes, false reopens")


class InvalidBody(Exception):
    """The request body is not acceptable JSON for this endpoint."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors[0]["message"] if errors else "invalid body")
        self.errors = errors


_Body = TypeVar("_Body", bound=BaseModel)


def _field_errors(error: PydanticValidationError) -> list[dict[str, str]]:
    found = []
    for item in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            message = "is not a field that can be set"
        elif kind == "json_invalid":
            message = "is not valid JSON"
        elif kind == "model_type":
            message = "must be a JSON object"
        else:
            message = item["msg"]
        found.append({"field": location or "body", "message": message})
    return found


async def read_body(request: Request, model: type[_Body]) -> _Body:
    """Read and validate the JSON body as ``model``; raises ``InvalidBody``."""
    raw = await request.body()
    if not raw.strip():
        raise InvalidBody([{"field": "body", "message": "must be a JSON object"}])
    try:
        return model.model_validate_json(raw)
    except PydanticValidationError as error:
        raise InvalidBody(_field_errors(error)) from None


def fields_given(body: BaseModel) -> dict[str, Any]:
    """The fields the client actually sent (null included), by name."""
    return {name: getattr(body, name) for name in body.model_fields_set}
