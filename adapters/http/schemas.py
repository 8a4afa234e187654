"""What goes over the wire: request bodies, the list query, tasks and problems, as pydantic models.

The models are the OpenAPI document that typed clients are generated from, so each says exactly
what the server does: optional fields are optional (no ``default: null``), nullable only where
null is accepted, with the domain's limits. The domain still decides (trimming, control
characters, at least one change); the models check shapes and types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, get_args, get_origin

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictStr,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from adapters.http.cursor import MAX_CURSOR_LENGTH
from application.listing import QUERY_MAX_LENGTH
from application.memory import Recent
from application.sync import DEFAULT_CHANGES_PAGE, MAX_CHANGES_PAGE, Change, Upsert
from application.tasks import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from domain.task import Priority, Task, TaskChanges
from domain.text import (
    DESCRIPTION_MAX_LENGTH,
    TAG_MAX_LENGTH,
    TAGS_MAX,
    TITLE_MAX_LENGTH,
    USER_ID_MAX_LENGTH,
)

JSON: Final = "application/json"
PROBLEM_JSON: Final = "application/problem+json"
MAX_BODY_BYTES: Final = 64 * 1024


def utc_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC, always with microseconds and ``Z`` (pydantic's format promises neither)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if value.microsecond:
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
    # A whole second (most due dates): orjson formats it in C, a fifth of isoformat's time, but
    # without a fraction.
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)[1:-2].decode() + ".000000Z"


def _stamp(value: datetime) -> datetime | str:
    # orjson writes a UTC datetime as ISO 8601 with "Z" in C, but drops a zero fraction: that one
    # case in a million (and any other zone) is formatted here instead.
    if value.microsecond and value.tzinfo is UTC:
        return value
    return utc_timestamp(value)


def task_document(task: Task) -> dict[str, Any]:
    """The one conversion of a task to what the API shows (the ``TaskOut`` schema)."""
    completed_at, due_at = task.completed_at, task.due_at
    return {
        "id": task.id,
        "user_id": task.owner,
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
        "completed_at": None if completed_at is None else _stamp(completed_at),
        "due_at": None if due_at is None else _stamp(due_at),
        "priority": task.priority.value,
        "tags": task.tags,  # a tuple: orjson writes it as an array
        "created_at": _stamp(task.created_at),
        "updated_at": _stamp(task.updated_at),
        "version": task.version,
    }


# The JSON of the tasks last shown, each with the entity it shows: a task unchanged since is the
# very same immutable entity again (``TaskEntities``), so its JSON need not be written anew. Matched
# by identity, which this memory keeps valid by holding the entity; so it is right for any
# application in the process, whatever its repository.
_shown: Final[Recent[int, tuple[Task, bytes]]] = Recent(
    lambda shown: len(shown[1]), max_entries=10_000, max_size=8 * 1024 * 1024
)


def task_json(task: Task) -> bytes:
    """A task as JSON: ``task_document``, written by orjson."""
    shown = _shown.get(task.id)
    if shown is not None and shown[0] is task:
        return shown[1]
    # orjson's bytes keep the whole buffer it wrote into (4 KiB): what is kept is a copy to size.
    body = memoryview(orjson.dumps(task_document(task), option=orjson.OPT_UTC_Z)).tobytes()
    _shown.put(task.id, (task, body))
    return body


MAX_PAGE_BYTES: Final = 4 * 1024 * 1024


def tasks_json(tasks: Sequence[Task], max_bytes: int = MAX_PAGE_BYTES) -> tuple[bytes, int]:
    """A list of tasks as JSON, and how many of them it holds.

    It stops before its size would pass ``max_bytes`` (always holding at least one task): a
    thousand tasks with long descriptions would be 22 MB held in memory per slow reader.
    """
    parts: list[bytes] = []
    size = 1  # "[", then each task with the comma or "]" after it
    for task in tasks:
        part = task_json(task)
        size += len(part) + 1
        if size > max_bytes and parts:
            break
        parts.append(part)
    return b"[" + b",".join(parts) + b"]", len(parts)


_Int64 = Annotated[int, Field(json_schema_extra={"format": "int64"})]


class TaskOut(BaseModel):
    """A task."""

    # The schema of what task_json writes: the tests validate every task they receive against
    # it, so the two cannot drift apart.

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
                    "due_at": "2026-12-24T16:00:00.000000Z",
                    "priority": "high",
                    "tags": ["errands", "home"],
                    "created_at": "2026-01-14T09:30:00.123456Z",
                    "updated_at": "2026-01-14T09:30:00.123456Z",
                    "version": 1,
                }
            ]
        }
    )

    id: _Int64 = Field(ge=1)
    user_id: str
    title: str
    description: str | None
    completed: bool
    completed_at: datetime | None = Field(description="UTC, with microseconds; null if open")
    due_at: datetime | None = Field(description="UTC, with microseconds; null if not due")
    priority: Priority
    tags: list[str] = Field(description="Sorted, lower-case, no duplicates")
    created_at: datetime = Field(description="UTC, with microseconds")
    updated_at: datetime = Field(description="UTC, with microseconds")
    version: _Int64 = Field(ge=1, description="1 at creation, one more with every change; the ETag")


def _optional_not_defaulted(schema: dict[str, Any]) -> None:
    # An optional field is one the client may leave out: the document says so by not listing it
    # as required, not with a ``default: null`` that generators turn into a nullable field.
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


_TITLE = Field(
    description=f"1-{TITLE_MAX_LENGTH} characters after trimming; no control characters",
    json_schema_extra={"minLength": 1, "maxLength": TITLE_MAX_LENGTH},
)


_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)


def _rfc3339(value: object) -> object:
    # pydantic alone would also take numbers and "1703433600" as Unix time, and a bare date.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-12-24T17:00:00Z")
    return value


DueAt = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    Field(strict=False, description="RFC 3339 date-time with an offset; returned in UTC"),
]
_PRIORITY = Field(strict=False, description="none (the default), low, medium or high")
# The set's limit holds after duplicates collapse (the domain's rule); this bounds what is sent.
TAGS_SENT_MAX: Final = 5 * TAGS_MAX
_TAGS = Field(
    max_length=TAGS_SENT_MAX,
    description=f"0-{TAGS_MAX} labels: trimmed and lower-cased, 1-{TAG_MAX_LENGTH} characters "
    f"each; duplicates collapse (at most {TAGS_SENT_MAX} entries as sent)",
)


class TaskCreate(BaseModel):
    """Body of `createTask`."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra=_optional_not_defaulted,
        title="TaskCreate",
    )

    title: Annotated[StrictStr, _TITLE]
    description: StrictStr | None = Field(
        default=None,
        max_length=DESCRIPTION_MAX_LENGTH,
        description="Tab and line breaks allowed; null or left out for none",
    )
    due_at: DueAt | None = None
    priority: Annotated[Priority, _PRIORITY] = Priority.NONE
    tags: Annotated[list[StrictStr], _TAGS] = []  # pydantic copies defaults


def _at_least_one_change(schema: dict[str, Any]) -> None:
    _optional_not_defaulted(schema)
    schema["minProperties"] = 1


class TaskUpdate(BaseModel):
    """Body of `updateTask`: any of the fields, at least one; those left out keep their value."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra=_at_least_one_change,
    )

    # title and completed may be left out but not null: without None in their type, an explicit
    # null fails validation while an absent field keeps the default.
    title: Annotated[StrictStr, _TITLE] = None  # type: ignore[assignment]  # absent, never null
    description: StrictStr | None = Field(
        default=None,
        max_length=DESCRIPTION_MAX_LENGTH,
        description="New description; null removes it",
    )
    completed: StrictBool = Field(  # type: ignore[assignment]  # absent, never null
        default=None, description="true completes the task, false reopens it"
    )
    due_at: DueAt | None = Field(default=None, description="New due date; null removes it")
    priority: Annotated[Priority, _PRIORITY] = None  # type: ignore[assignment]  # never null
    tags: Annotated[list[StrictStr], _TAGS] = None  # type: ignore[assignment]  # never null

    _changes: TaskChanges = PrivateAttr()

    @model_validator(mode="after")
    def _decided_by_the_domain(self) -> TaskUpdate:
        # The domain's rules (trimming, at least one field) run while the body is validated, so
        # their 400 comes before a 404 for the task id, as the contract orders them; its
        # InvalidTask passes through pydantic untouched.
        given = {name: getattr(self, name) for name in self.model_fields_set}
        self._changes = TaskChanges.create(**given)
        return self

    @property
    def changes(self) -> TaskChanges:
        """The edit, as the domain validated it."""
        return self._changes


def url_integer(value: object) -> object:
    """An integer in a URL is written in ASCII digits (a path's or query's ``BeforeValidator``).

    Pydantic alone would also take "+5", " 5", "1_0" and "5.0". A minus sign is let through, so
    that "-1" reads "must be at least 1".
    """
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]+", value):
        raise ValueError("must be an integer")
    return value


UrlInteger = Annotated[int, BeforeValidator(url_integer)]
"""An ``int`` of a query model (a path parameter puts the validator after its ``Path``)."""


def _query_bool(value: object) -> object:
    # Only the two words the contract names; pydantic alone would also take 1, yes, on, ...
    if value in ("true", "false"):
        return value == "true"
    if isinstance(value, bool):
        return value
    raise ValueError("must be true or false")


class SortParameter(StrEnum):
    """A sort order: a field, ascending, or descending with a leading `-`."""

    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    UPDATED_AT = "updated_at"
    UPDATED_AT_DESC = "-updated_at"
    DUE_AT = "due_at"
    DUE_AT_DESC = "-due_at"
    PRIORITY = "priority"
    PRIORITY_DESC = "-priority"
    TITLE = "title"
    TITLE_DESC = "-title"


def _comma_separated(value: object) -> object:
    # `priority=high,medium` (the contract's form) and `priority=high&priority=medium` alike.
    if isinstance(value, list):
        return [part for item in value for part in str(item).split(",")]
    return value


def _query_datetime(value: object) -> object:
    # An unencoded "+01:00" in a query string arrives as " 01:00".
    if isinstance(value, str) and re.search(r" \d{2}:\d{2}$", value):
        value = value[:-6] + "+" + value[-5:]
    return _rfc3339(value)


QueryDateTime = Annotated[AwareDatetime, BeforeValidator(_query_datetime)]


class TaskQuery(BaseModel):
    """The query of `listTasks`."""

    model_config = ConfigDict(extra="ignore")

    limit: UrlInteger = Field(
        default=DEFAULT_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"Page size (default {DEFAULT_PAGE_SIZE})",
    )
    completed: Annotated[bool | SkipJsonSchema[None], BeforeValidator(_query_bool)] = Field(
        default=None, description="Only complete (true) or incomplete (false) tasks"
    )
    priority: Annotated[list[Priority], BeforeValidator(_comma_separated)] = Field(
        default=[], description="Only tasks of any of these priorities (comma-separated)"
    )
    tag: list[str] = Field(
        default=[], description="Only tasks carrying this tag; repeat it for tasks carrying all"
    )
    due_before: QueryDateTime | SkipJsonSchema[None] = Field(
        default=None, description="Only tasks due strictly before this RFC 3339 date-time"
    )
    due_after: QueryDateTime | SkipJsonSchema[None] = Field(
        default=None, description="Only tasks due at or after this RFC 3339 date-time"
    )
    q: str | SkipJsonSchema[None] = Field(
        default=None,
        min_length=1,
        max_length=QUERY_MAX_LENGTH,
        description="Only tasks whose title or description holds every word of it "
        "(case-insensitive substrings)",
    )
    sort: SortParameter = Field(
        default=SortParameter.CREATED_AT,
        description="Order (ties by id); tasks without a due date come last in both due orders",
    )
    cursor: str | SkipJsonSchema[None] = Field(
        default=None,
        max_length=MAX_CURSOR_LENGTH,
        description='Opaque; from the previous page\'s `Link: <…>; rel="next"`',
    )


def single_valued(query: type[BaseModel]) -> tuple[str, ...]:
    """The parameters of a query model that take one value (the others are lists)."""

    def repeatable(annotation: object) -> bool:  # list[X], or list[X] | None
        return any(get_origin(a) is list for a in (annotation, *get_args(annotation)))

    fields = query.model_fields.items()
    return tuple(name for name, field in fields if not repeatable(field.annotation))


class ChangesQuery(BaseModel):
    """The query of `listChanges`."""

    model_config = ConfigDict(extra="ignore")

    since: str | SkipJsonSchema[None] = Field(
        default=None,
        max_length=MAX_CURSOR_LENGTH,
        description="The `next` of an earlier page; without it, every current task comes",
    )
    limit: UrlInteger = Field(
        default=DEFAULT_CHANGES_PAGE,
        ge=1,
        le=MAX_CHANGES_PAGE,
        description=f"Page size (default {DEFAULT_CHANGES_PAGE})",
    )


class UpsertOut(BaseModel):
    """A task created or changed, in its latest state."""

    op: Literal["upsert"]
    task: TaskOut


class DeleteOut(BaseModel):
    """A task deleted."""

    op: Literal["delete"]
    id: _Int64 = Field(ge=1)
    deleted_at: datetime = Field(description="UTC, with microseconds")


class ChangesOut(BaseModel):
    """A page of the change feed, in commit order; each task at most once, in its latest state."""

    changes: list[Annotated[UpsertOut | DeleteOut, Field(discriminator="op")]]
    next: str = Field(description="Where this page ends: the `since` of the next request")
    has_more: bool = Field(description="Another page follows at once; follow `next` until false")


def change_document(change: Change) -> dict[str, Any]:
    """A change as the feed shows it (the ``UpsertOut`` / ``DeleteOut`` schemas)."""
    if isinstance(change, Upsert):
        return {"op": "upsert", "task": task_document(change.task)}
    return {"op": "delete", "id": change.task_id, "deleted_at": _stamp(change.deleted_at)}


def change_json(change: Change) -> bytes:
    """One change as the feed and the event stream write it."""
    return orjson.dumps(change_document(change), option=orjson.OPT_UTC_Z)


# What a page of changes holds around them, with the longest "next" a token may have.
_CHANGES_ENVELOPE: Final = len(b'{"changes":[],"next":"","has_more":false}') + MAX_CURSOR_LENGTH


def changes_json(
    changes: Sequence[Change], max_bytes: int = MAX_PAGE_BYTES
) -> tuple[list[bytes], int]:
    """Each change as JSON, stopping before the page would pass ``max_bytes`` (at least one)."""
    parts: list[bytes] = []
    size = _CHANGES_ENVELOPE
    for change in changes:
        part = change_json(change)
        size += len(part) + 1
        if size > max_bytes and parts:
            break
        parts.append(part)
    return parts, len(parts)


class TagCountOut(BaseModel):
    """A tag and how many of the user's tasks carry it."""

    tag: str
    count: int = Field(ge=1)


USER_ID_SCHEMA: Final = {"minLength": 1, "maxLength": USER_ID_MAX_LENGTH}


class ProblemCode(StrEnum):
    """Every `code` a problem response may carry."""

    UNAUTHORIZED = "unauthorized"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105  # an error code, not a secret
    FORBIDDEN = "forbidden"
    TASK_NOT_FOUND = "task_not_found"
    VALIDATION_ERROR = "validation_error"
    PRECONDITION_FAILED = "precondition_failed"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    REQUEST_HEADER_FIELDS_TOO_LARGE = "request_header_fields_too_large"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_STREAMS = "too_many_streams"
    TASK_LIMIT_REACHED = "task_limit_reached"
    DATABASE_UNAVAILABLE = "database_unavailable"
    WRITE_CONTENTION = "write_contention"
    SYNC_TOKEN_EXPIRED = "sync_token_expired"  # noqa: S105  # an error code, not a secret
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    SERVICE_UNAVAILABLE = "service_unavailable"
    HTTP_ERROR = "http_error"
    INTERNAL_ERROR = "internal_error"


# RFC 9457: the title summarises the problem type, the same on every occurrence of it (the status
# phrase would give one title to many types).
PROBLEM_TITLES: Final[Mapping[ProblemCode, str]] = MappingProxyType(
    {
        ProblemCode.UNAUTHORIZED: "Not authenticated",
        ProblemCode.TOKEN_EXPIRED: "Token expired",
        ProblemCode.FORBIDDEN: "Forbidden",
        ProblemCode.TASK_NOT_FOUND: "Task not found",
        ProblemCode.VALIDATION_ERROR: "Invalid request",
        ProblemCode.PRECONDITION_FAILED: "Precondition failed",
        ProblemCode.IDEMPOTENCY_CONFLICT: "Idempotency key reused",
        ProblemCode.IDEMPOTENCY_IN_PROGRESS: "Request in progress",
        ProblemCode.PAYLOAD_TOO_LARGE: "Request body too large",
        ProblemCode.REQUEST_HEADER_FIELDS_TOO_LARGE: "Request headers too large",
        ProblemCode.RATE_LIMITED: "Too many requests",
        ProblemCode.TOO_MANY_STREAMS: "Too many event streams",
        ProblemCode.TASK_LIMIT_REACHED: "Task limit reached",
        ProblemCode.DATABASE_UNAVAILABLE: "Database unavailable",
        ProblemCode.WRITE_CONTENTION: "Write contention",
        ProblemCode.SYNC_TOKEN_EXPIRED: "Sync token expired",
        ProblemCode.BAD_REQUEST: "Bad request",
        ProblemCode.NOT_FOUND: "Not found",
        ProblemCode.METHOD_NOT_ALLOWED: "Method not allowed",
        ProblemCode.NOT_ACCEPTABLE: "Not acceptable",
        ProblemCode.UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
        ProblemCode.SERVICE_UNAVAILABLE: "Service unavailable",
        ProblemCode.HTTP_ERROR: "HTTP error",
        ProblemCode.INTERNAL_ERROR: "Internal error",
    }
)


def problem_type(code: ProblemCode) -> str:
    """The problem's ``type``: a reference relative to the service, one per code."""
    return f"/problems/{code.replace('_', '-')}"


def problem_body(
    status: int,
    code: ProblemCode,
    detail: str,
    request_id: str,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, object]:
    """The problem document itself (also the OpenAPI document's examples)."""
    body: dict[str, object] = {
        "type": problem_type(code),
        "title": PROBLEM_TITLES[code],
        "status": status,
        "detail": detail,
        "code": code.value,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = errors
    return body


class FieldError(BaseModel):
    """One invalid input."""

    field: str = Field(examples=["title"])
    message: str = Field(examples=["must not be empty"])


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/validation-error",
                    "title": "Invalid request",
                    "status": 400,
                    "detail": "title must not be empty",
                    "code": "validation_error",
                    "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "errors": [{"field": "title", "message": "must not be empty"}],
                }
            ]
        }
    )

    type: str = Field(
        description="A URI reference naming the kind of problem: a page that describes it"
    )
    title: str = Field(
        description="A short summary of the problem type, the same for every occurrence"
    )
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong, for a human")
    code: ProblemCode = Field(description="Stable, machine-readable")
    request_id: str = Field(description="The request's X-Request-ID")
    errors: list[FieldError] = Field(
        default_factory=list,
        description="Present on validation errors only: each invalid field",
        json_schema_extra=_no_default,
    )


class Readiness(BaseModel):
    """The body of a ready `/readyz`."""

    status: Literal["ready"]


class Liveness(BaseModel):
    """The body of `/healthz`."""

    status: Literal["ok"]
