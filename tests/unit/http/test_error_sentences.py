"""A 400's detail reads as a sentence about the field: its name, then the rule it broke."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from application.tasks import MAX_PAGE_SIZE
from tests.e2e.helpers import assert_problem
from tests.tokens import bearer

CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("GET", "/api/alice/tasks?cursor=abc", {}, "cursor is not valid"),
    ("GET", "/api/alice/tasks?limit=abc", {}, "limit must be an integer"),
    ("GET", "/api/alice/tasks?limit=1_0", {}, "limit must be an integer"),
    ("GET", "/api/alice/tasks?limit=0", {}, "limit must be at least 1"),
    ("GET", "/api/alice/tasks?limit=-1", {}, "limit must be at least 1"),
    (
        "GET",
        f"/api/alice/tasks?limit={MAX_PAGE_SIZE + 1}",
        {},
        f"limit must be at most {MAX_PAGE_SIZE}",
    ),
    ("GET", "/api/alice/tasks?completed=maybe", {}, "completed must be true or false"),
    ("POST", "/api/alice/tasks", {"json": {"title": 5}}, "title must be a string"),
    (
        "POST",
        "/api/alice/tasks",
        {"json": {"title": "x", "description": [1]}},
        "description must be a string",
    ),
    ("POST", "/api/alice/tasks", {"json": [1]}, "body must be a JSON object"),
    (
        "POST",
        "/api/alice/tasks",
        {"json": {"title": "x", "id": 3}},
        "id is not a field that can be set",
    ),
]


@pytest.mark.parametrize(("method", "url", "body", "detail"), CASES)
async def test_the_detail_names_the_field_then_the_rule(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any], detail: str
) -> None:
    response = await client.request(method, url, headers=bearer(), **body)
    problem = assert_problem(response, 400, "validation_error")
    assert problem["detail"] == detail
    assert "Input should" not in response.text
