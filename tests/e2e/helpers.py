"""Small helpers shared by the end-to-end tests: create tasks, check problem responses."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx
from fastapi import FastAPI

from adapters.http.schemas import TaskOut
from tests.tokens import bearer

PROBLEM: Final = "application/problem+json"
TIMESTAMP: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
TASK_FIELDS: Final = {
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "completed_at",
    "due_at",
    "priority",
    "tags",
    "created_at",
    "updated_at",
    "version",
}
PROBLEM_FIELDS: Final = {"type", "title", "status", "detail", "code", "request_id"}
# Things an error body must never show.
LEAKS: Final = ("Traceback", "sqlalchemy", "asyncpg", "SELECT ", "INSERT ", 'File "')


async def create(
    client: httpx.AsyncClient,
    user: str = "alice",
    title: str = "a task",
    description: str | None = None,
) -> dict[str, Any]:
    """Create a task through the API and return its JSON."""
    body: dict[str, Any] = {"title": title}
    if description is not None:
        body["description"] = description
    response = await client.post(f"/api/{user}/tasks", json=body, headers=bearer(user))
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def media_type(response: httpx.Response) -> str:
    """The response's media type without parameters."""
    content_type = str(response.headers.get("content-type", ""))
    return content_type.split(";", maxsplit=1)[0].strip().lower()


def assert_task(task: dict[str, Any], *, user: str) -> None:
    """``task`` has the contract's shape and belongs to ``user``."""
    assert set(task) == TASK_FIELDS
    TaskOut.model_validate(task)  # the documented schema (OpenAPI) of what was written
    assert isinstance(task["id"], int)
    assert task["id"] > 0
    assert task["user_id"] == user
    assert isinstance(task["title"], str)
    assert task["description"] is None or isinstance(task["description"], str)
    assert isinstance(task["completed"], bool)
    assert isinstance(task["version"], int)
    assert TIMESTAMP.fullmatch(task["created_at"])
    assert TIMESTAMP.fullmatch(task["updated_at"])
    if task["completed"]:
        assert TIMESTAMP.fullmatch(task["completed_at"])
    else:
        assert task["completed_at"] is None


def assert_task_response(response: httpx.Response, status: int, *, user: str) -> dict[str, Any]:
    """A single-task success: status, JSON, shape and ``ETag: "<version>"``."""
    assert response.status_code == status, response.text
    assert media_type(response) == "application/json"
    task: dict[str, Any] = response.json()
    assert_task(task, user=user)
    assert response.headers.get("etag") == f'"{task["version"]}"'
    return task


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem with the contract's fields; returns the body."""
    assert response.status_code == status, response.text
    assert media_type(response) == PROBLEM
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == status
    for field in ("type", "title", "detail", "code", "request_id"):
        assert isinstance(body[field], str), field
        assert body[field], field
    if code is not None:
        assert body["code"] == code
        assert body["type"] == "/problems/" + code.replace("_", "-")
    assert body["request_id"] == response.headers.get("x-request-id")
    for leak in LEAKS:
        assert leak not in response.text
    return body


def assert_validation_problem(response: httpx.Response, field: str | None = None) -> dict[str, Any]:
    """A 400 ``validation_error`` with an ``errors`` list of {field, message}."""
    body = assert_problem(response, 400, "validation_error")
    assert body["title"] == "Invalid request"  # the contract's example
    errors = body.get("errors")
    assert isinstance(errors, list), body
    assert errors, body
    for item in errors:
        assert isinstance(item, dict)
        assert set(item) == {"field", "message"}, item
        assert isinstance(item["field"], str)
        assert isinstance(item["message"], str)
        assert item["message"]
    if field is not None:
        assert field in [item["field"] for item in errors], errors
    return body


@asynccontextmanager
async def custom_client(
    app_factory: Callable[..., FastAPI], **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app built with other settings, its lifespan running."""
    app = app_factory(**overrides)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
