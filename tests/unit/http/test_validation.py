"""Validation of request bodies (400) and body size (413); nothing invalid is ever stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    assert_problem,
    assert_task_response,
    assert_validation_problem,
    create,
)
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks

JSON_HEADERS = {**bearer(), "Content-Type": "application/json"}


def _json(body: dict[str, Any]) -> bytes:
    """ASCII JSON: lone surrogates travel as ``\\udXXX`` escapes, as a browser may send them."""
    return json.dumps(body).encode("ascii")


# --- Title and description values --------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "stored"),
    [
        ("x", "x"),
        ("a" * 500, "a" * 500),
        ("  " + "a" * 500 + "  ", "a" * 500),
        ("é" * 500, "é" * 500),
        ("😀" * 500, "😀" * 500),
        ("  Buy groceries  ", "Buy groceries"),
        ("\u00a0nbsp trimmed\u3000", "nbsp trimmed"),
        ("日本語のタスク", "日本語のタスク"),
        ("'; DROP TABLE tasks; --", "'; DROP TABLE tasks; --"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("inner  spaces kept", "inner  spaces kept"),
    ],
)
async def test_create_accepts_valid_titles(
    client: httpx.AsyncClient, rows: StoredTasks, title: str, stored: str
) -> None:
    response = await client.post("/api/alice/tasks", json={"title": title}, headers=bearer())

    task = assert_task_response(response, 201, user="alice")
    assert task["title"] == stored
    row = await rows.get(task["id"])
    assert row is not None
    assert row["title"] == stored


INVALID_TITLES: list[Any] = [
    "",
    " ",
    "     \t\n  ",
    "a" * 501,
    "  " + "a" * 501 + "  ",
    "😀" * 501,
    "nul\x00inside",
    "\x00",
    "bell\x07",
    "tab\tinside",
    "new\nline inside",
    "carriage\rreturn inside",
    "escape\x1b[31m",
    "del\x7f",
    "c1\x9b",
]


@pytest.mark.parametrize("title", INVALID_TITLES, ids=repr)
async def test_create_rejects_invalid_titles(
    client: httpx.AsyncClient, rows: StoredTasks, title: str
) -> None:
    response = await client.post(
        "/api/alice/tasks", content=_json({"title": title}), headers=JSON_HEADERS
    )

    assert_validation_problem(response, "title")
    assert await rows.count() == 0


@pytest.mark.parametrize("title", INVALID_TITLES, ids=repr)
async def test_update_rejects_invalid_titles(
    client: httpx.AsyncClient, rows: StoredTasks, title: str
) -> None:
    task = await create(client, "alice", "original")
    before = await rows.get(task["id"])

    response = await client.put(
        f"/api/alice/tasks/{task['id']}", content=_json({"title": title}), headers=JSON_HEADERS
    )

    assert_validation_problem(response, "title")
    assert await rows.get(task["id"]) == before


@pytest.mark.parametrize(
    "description",
    [
        "",
        "d" * 5000,
        "tab\there",
        "line\nbreaks\r\nkept",
        "  surrounding spaces kept  ",
        "ünïcödé 😀 日本",
    ],
)
async def test_create_accepts_valid_descriptions(
    client: httpx.AsyncClient, rows: StoredTasks, description: str
) -> None:
    response = await client.post(
        "/api/alice/tasks", json={"title": "t", "description": description}, headers=bearer()
    )

    task = assert_task_response(response, 201, user="alice")
    assert task["description"] == description
    row = await rows.get(task["id"])
    assert row is not None
    assert row["description"] == description


INVALID_DESCRIPTIONS: list[Any] = [
    "d" * 5001,
    "nul\x00inside",
    "bell\x07",
    "escape\x1b",
    "vertical\x0btab",
    "form\x0cfeed",
    "del\x7f",
    "c1\x85",
]


@pytest.mark.parametrize("description", INVALID_DESCRIPTIONS, ids=repr)
async def test_create_rejects_invalid_descriptions(
    client: httpx.AsyncClient, rows: StoredTasks, description: str
) -> None:
    response = await client.post(
        "/api/alice/tasks",
        content=_json({"title": "t", "description": description}),
        headers=JSON_HEADERS,
    )

    assert_validation_problem(response, "description")
    assert await rows.count() == 0


@pytest.mark.parametrize("description", INVALID_DESCRIPTIONS, ids=repr)
async def test_update_rejects_invalid_descriptions(
    client: httpx.AsyncClient, rows: StoredTasks, description: str
) -> None:
    task = await create(client, "alice", "t", "original")
    before = await rows.get(task["id"])

    response = await client.put(
        f"/api/alice/tasks/{task['id']}",
        content=_json({"description": description}),
        headers=JSON_HEADERS,
    )

    assert_validation_problem(response, "description")
    assert await rows.get(task["id"]) == before


@pytest.mark.parametrize(
    "body",
    [{"title": "lone \ud800 surrogate"}, {"title": "t", "description": "lone \udfff surrogate"}],
    ids=repr,
)
async def test_lone_surrogates_are_400_and_never_stored(
    client: httpx.AsyncClient, rows: StoredTasks, body: dict[str, Any]
) -> None:
    task = await create(client, "alice", "original")
    before = await rows.get(task["id"])

    created = await client.post("/api/alice/tasks", content=_json(body), headers=JSON_HEADERS)
    updated = await client.put(
        f"/api/alice/tasks/{task['id']}", content=_json(body), headers=JSON_HEADERS
    )

    assert_validation_problem(created)
    assert_validation_problem(updated)
    assert await rows.count() == 1
    assert await rows.get(task["id"]) == before


# --- Shapes and types --------------------------------------------------------------------------

MALFORMED = [
    b"",
    b"   ",
    b"{",
    b'{"title": "x"',
    b"{'title': 'x'}",
    b'{"title": "x",}',
    b"title=x",
    b'{"title": "x"} trailing',
    b"\xff\xfe\x00",
    b'{"title": NaN}',
]


@pytest.mark.parametrize("raw", MALFORMED, ids=repr)
async def test_create_rejects_malformed_json(
    client: httpx.AsyncClient, rows: StoredTasks, raw: bytes
) -> None:
    response = await client.post("/api/alice/tasks", content=raw, headers=JSON_HEADERS)

    assert_validation_problem(response)
    assert await rows.count() == 0


@pytest.mark.parametrize("raw", MALFORMED, ids=repr)
async def test_update_rejects_malformed_json(
    client: httpx.AsyncClient, rows: StoredTasks, raw: bytes
) -> None:
    task = await create(client, "alice")
    before = await rows.get(task["id"])

    response = await client.put(f"/api/alice/tasks/{task['id']}", content=raw, headers=JSON_HEADERS)

    assert_validation_problem(response)
    assert await rows.get(task["id"]) == before


NOT_OBJECTS: list[Any] = [[], [{"title": "x"}], "x", 1, 1.5, None, True]


@pytest.mark.parametrize("body", NOT_OBJECTS, ids=repr)
async def test_create_rejects_a_body_that_is_not_an_object(
    client: httpx.AsyncClient, rows: StoredTasks, body: Any
) -> None:
    response = await client.post("/api/alice/tasks", json=body, headers=bearer())

    assert_validation_problem(response)
    assert await rows.count() == 0


@pytest.mark.parametrize("body", NOT_OBJECTS, ids=repr)
async def test_update_rejects_a_body_that_is_not_an_object(
    client: httpx.AsyncClient, rows: StoredTasks, body: Any
) -> None:
    task = await create(client, "alice")
    before = await rows.get(task["id"])

    response = await client.put(f"/api/alice/tasks/{task['id']}", json=body, headers=bearer())

    assert_validation_problem(response)
    assert await rows.get(task["id"]) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"description": "no title"}, "title"),
        ({"title": None}, "title"),
        ({"title": 123}, "title"),
        ({"title": 1.5}, "title"),
        ({"title": True}, "title"),
        ({"title": ["x"]}, "title"),
        ({"title": {"text": "x"}}, "title"),
        ({"title": "x", "description": 5}, "description"),
        ({"title": "x", "description": False}, "description"),
        ({"title": "x", "description": ["d"]}, "description"),
        ({"title": "x", "description": {}}, "description"),
    ],
    ids=repr,
)
async def test_create_rejects_missing_or_mistyped_fields(
    client: httpx.AsyncClient, rows: StoredTasks, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/alice/tasks", json=body, headers=bearer())

    assert_validation_problem(response, field)
    assert await rows.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": 123}, "title"),
        ({"title": ["x"]}, "title"),
        ({"description": 5}, "description"),
        ({"completed": "true"}, "completed"),
        ({"completed": 1}, "completed"),
        ({"completed": 0}, "completed"),
        ({"completed": "yes"}, "completed"),
        ({"completed": []}, "completed"),
        ({"title": "fine", "completed": "false"}, "completed"),
    ],
    ids=repr,
)
async def test_update_rejects_mistyped_fields(
    client: httpx.AsyncClient, rows: StoredTasks, body: dict[str, Any], field: str
) -> None:
    task = await create(client, "alice", "original")
    before = await rows.get(task["id"])

    response = await client.put(f"/api/alice/tasks/{task['id']}", json=body, headers=bearer())

    assert_validation_problem(response, field)
    assert await rows.get(task["id"]) == before


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"priority": 1}, "priority"),
        ({"Title": "x"}, "Title"),
        ({"completed": True}, "completed"),
        ({"completed": False}, "completed"),
        ({"id": 999}, "id"),
        ({"user_id": "bob"}, "user_id"),
        ({"version": 7}, "version"),
        ({"created_at": "2020-01-01T00:00:00.000000Z"}, "created_at"),
        ({"updated_at": "2020-01-01T00:00:00.000000Z"}, "updated_at"),
        ({"completed_at": "2020-01-01T00:00:00.000000Z"}, "completed_at"),
    ],
    ids=repr,
)
async def test_create_rejects_unknown_and_read_only_fields_and_applies_nothing(
    client: httpx.AsyncClient, rows: StoredTasks, extra: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/alice/tasks", json={"title": "x", **extra}, headers=bearer())

    assert_validation_problem(response, field)
    assert await rows.count() == 0
    assert await rows.get(999) is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"priority": 1}, "priority"),
        ({"id": 999}, "id"),
        ({"user_id": "bob"}, "user_id"),
        ({"version": 7}, "version"),
        ({"created_at": "2020-01-01T00:00:00.000000Z"}, "created_at"),
        ({"updated_at": "2020-01-01T00:00:00.000000Z"}, "updated_at"),
        ({"completed_at": "2020-01-01T00:00:00.000000Z"}, "completed_at"),
    ],
    ids=repr,
)
async def test_update_rejects_unknown_and_read_only_fields_and_applies_nothing(
    client: httpx.AsyncClient, rows: StoredTasks, extra: dict[str, Any], field: str
) -> None:
    task = await create(client, "alice", "original")
    before = await rows.get(task["id"])

    response = await client.put(
        f"/api/alice/tasks/{task['id']}", json={"title": "changed", **extra}, headers=bearer()
    )

    assert_validation_problem(response, field)
    assert await rows.get(task["id"]) == before
    assert await rows.count() == 1
    assert await rows.count("bob") == 0


async def test_validation_problem_names_the_field_and_the_rule(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/alice/tasks", json={"title": "   "}, headers=bearer())

    body = assert_validation_problem(response, "title")
    assert body["errors"][0]["field"] == "title"
    assert "empty" in body["errors"][0]["message"]
    assert "title" in body["detail"]


# --- Body size ---------------------------------------------------------------------------------

LIMIT = 64 * 1024


def _padded(size: int) -> bytes:
    """A valid create body of exactly ``size`` bytes (white space padding)."""
    head, tail = b'{"title": "padded"', b"}"
    return head + b" " * (size - len(head) - len(tail)) + tail


async def test_body_of_exactly_64_kib_is_accepted(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    response = await client.post("/api/alice/tasks", content=_padded(LIMIT), headers=JSON_HEADERS)

    assert_task_response(response, 201, user="alice")
    assert await rows.count() == 1


@pytest.mark.parametrize("size", [LIMIT + 1, 2 * LIMIT, 1024 * 1024])
async def test_create_body_over_64_kib_is_413(
    client: httpx.AsyncClient, rows: StoredTasks, size: int
) -> None:
    response = await client.post("/api/alice/tasks", content=_padded(size), headers=JSON_HEADERS)

    body = assert_problem(response, 413)
    assert body["detail"] == f"The body may hold at most {LIMIT} bytes."
    assert await rows.count() == 0


async def test_update_body_over_64_kib_is_413(client: httpx.AsyncClient, rows: StoredTasks) -> None:
    task = await create(client, "alice")
    before = await rows.get(task["id"])
    body = b'{"description": "' + b"d" * (LIMIT + 10) + b'"}'

    response = await client.put(
        f"/api/alice/tasks/{task['id']}", content=body, headers=JSON_HEADERS
    )

    assert_problem(response, 413)
    assert await rows.get(task["id"]) == before


async def test_streamed_body_over_64_kib_without_length_is_413(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "streamed", "description": "'
        for _ in range(20):
            yield b"d" * 8192
        yield b'"}'

    response = await client.post("/api/alice/tasks", content=chunks(), headers=JSON_HEADERS)

    assert "content-length" not in response.request.headers
    body = assert_problem(response, 413)
    assert body["detail"] == f"The body may hold at most {LIMIT} bytes."  # as with a length
    assert await rows.count() == 0


async def test_an_oversized_body_is_refused_before_authentication(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    response = await client.post(
        "/api/alice/tasks",
        content=_padded(LIMIT + 1),
        headers={"Content-Type": "application/json"},
    )

    # The contract allows either; this service decides from the headers, before reading a token.
    assert_problem(response, 413)
    assert await rows.count() == 0


# --- Content type ------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "application/json", "application/merge+json"])
async def test_a_body_without_content_type_or_with_a_json_one_is_read_as_json(
    client: httpx.AsyncClient, rows: StoredTasks, content_type: str | None
) -> None:
    headers = bearer() if content_type is None else {**bearer(), "Content-Type": content_type}

    created = await client.post("/api/alice/tasks", content=b'{"title": "typed"}', headers=headers)
    task = assert_task_response(created, 201, user="alice")
    updated = await client.put(
        f"/api/alice/tasks/{task['id']}", content=b'{"title": "retyped"}', headers=headers
    )

    assert assert_task_response(updated, 200, user="alice")["title"] == "retyped"
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["title"] == "retyped"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_declared_as_another_media_type_is_a_400(
    client: httpx.AsyncClient, rows: StoredTasks, content_type: str
) -> None:
    headers = {**bearer(), "Content-Type": content_type}

    response = await client.post("/api/alice/tasks", content=b'{"title": "typed"}', headers=headers)

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"] == [
        {"field": "body", "message": "must be JSON (Content-Type: application/json)"}
    ]
    assert await rows.count() == 0
