"""Due date, priority and tags over HTTP: what is accepted, how it comes back, what is a 400."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.helpers import assert_problem, assert_task_response, assert_validation_problem
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks

TASKS = "/api/alice/tasks"


async def _create(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(TASKS, json={"title": "t", **body}, headers=bearer())


async def test_a_client_that_sends_only_a_title_gets_the_defaults(
    client: httpx.AsyncClient,
) -> None:
    task = assert_task_response(await _create(client), 201, user="alice")
    assert (task["due_at"], task["priority"], task["tags"]) == (None, "none", [])


async def test_the_new_fields_are_stored_and_returned_normalised(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    response = await _create(
        client,
        due_at="2026-12-24T17:00:00+01:00",
        priority="high",
        tags=[" Home ", "errands", "HOME", "Écoles"],
    )
    task = assert_task_response(response, 201, user="alice")
    assert task["due_at"] == "2026-12-24T16:00:00.000000Z"  # UTC, microseconds
    assert task["priority"] == "high"
    assert task["tags"] == ["errands", "home", "écoles"]  # trimmed, lower-cased, one each, sorted
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["tags"] == ("errands", "home", "écoles")
    fetched = await client.get(f"{TASKS}/{task['id']}", headers=bearer())
    assert fetched.json() == task


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"due_at": "2026-12-24T16:00:00"}, "due_at"),  # no offset
        ({"due_at": "2026-12-24"}, "due_at"),
        ({"due_at": 1766592000}, "due_at"),
        ({"due_at": "1766592000"}, "due_at"),
        ({"due_at": "tomorrow"}, "due_at"),
        ({"due_at": "2026-13-24T16:00:00Z"}, "due_at"),
        ({"due_at": "0001-01-01T00:00:00+01:00"}, "due_at"),  # before year 1 in UTC
        ({"priority": "urgent"}, "priority"),
        ({"priority": "HIGH"}, "priority"),
        ({"priority": 3}, "priority"),
        ({"priority": None}, "priority"),
        ({"tags": None}, "tags"),
        ({"tags": "home"}, "tags"),
        ({"tags": [1]}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"tags": ["   "]}, "tags"),
        ({"tags": ["x" * 51]}, "tags"),
        ({"tags": ["a\u0000b"]}, "tags"),
        ({"tags": ["new\nline"]}, "tags"),
        ({"tags": ["\u202eevil"]}, "tags"),
        ({"tags": [f"t{n}" for n in range(21)]}, "tags"),
        ({"tags": ["same"] * 101}, "tags"),  # one tag, but more entries than are read
    ],
)
async def test_invalid_new_fields_are_400_naming_the_field_and_store_nothing(
    client: httpx.AsyncClient, rows: StoredTasks, body: dict[str, Any], field: str
) -> None:
    response = await _create(client, **body)
    problem = assert_validation_problem(response)
    assert problem["errors"][0]["field"].split(".")[0] == field, problem
    assert problem["detail"].startswith(field), problem
    assert await rows.count() == 0


async def test_limits_hold_at_the_edges(client: httpx.AsyncClient) -> None:
    tags = [f"t{n}" for n in range(18)] + ["T0", " t1 "]  # 20 given, 18 after collapsing
    task = assert_task_response(await _create(client, tags=tags), 201, user="alice")
    assert len(task["tags"]) == 18
    # The limit is on the set: 20 tags sent as 100 entries are 20 tags.
    tags = [f"{case(f't{n}')} " for n in range(20) for case in (str, str.upper)] * 2
    tags += [f"t{n}" for n in range(20)]
    assert len(tags) == 100
    task = assert_task_response(await _create(client, tags=tags), 201, user="alice")
    assert task["tags"] == sorted(f"t{n}" for n in range(20))
    long = assert_task_response(await _create(client, tags=["x" * 50]), 201, user="alice")
    assert long["tags"] == ["x" * 50]
    padded = assert_task_response(
        await _create(client, tags=[f"  {'y' * 50}  "]), 201, user="alice"
    )
    assert padded["tags"] == ["y" * 50]
    far = assert_task_response(
        await _create(client, due_at="9999-12-31T23:59:59.999999Z"), 201, user="alice"
    )
    assert far["due_at"] == "9999-12-31T23:59:59.999999Z"


async def test_put_changes_each_new_field_and_every_put_is_a_version(
    client: httpx.AsyncClient,
) -> None:
    task = assert_task_response(
        await _create(client, due_at="2026-12-24T16:00:00Z", tags=["a"]), 201, user="alice"
    )
    url = f"{TASKS}/{task['id']}"
    steps: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"priority": "low"}, {"priority": "low"}),
        ({"tags": ["B", "c"]}, {"tags": ["b", "c"]}),  # replaces the whole set
        ({"due_at": "2027-01-01T00:00:00-05:00"}, {"due_at": "2027-01-01T05:00:00.000000Z"}),
        ({"due_at": None}, {"due_at": None}),  # null clears
        ({"tags": []}, {"tags": []}),
        ({"title": "kept others"}, {"priority": "low", "tags": [], "due_at": None}),
    ]
    version = task["version"]
    for body, expected in steps:
        updated = assert_task_response(
            await client.put(url, json=body, headers=bearer()), 200, user="alice"
        )
        version += 1
        assert updated["version"] == version, body
        assert {key: updated[key] for key in expected} == expected, body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": None}, "priority"),
        ({"tags": None}, "tags"),
        ({"due_at": "2026-12-24T16:00:00"}, "due_at"),
        ({"tags": ["ok", "x" * 51]}, "tags"),
    ],
)
async def test_invalid_changes_are_400_and_change_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    task = assert_task_response(await _create(client, tags=["kept"]), 201, user="alice")
    url = f"{TASKS}/{task['id']}"
    problem = assert_validation_problem(await client.put(url, json=body, headers=bearer()))
    assert problem["errors"][0]["field"] == field
    assert (await client.get(url, headers=bearer())).json() == task


async def test_an_idempotent_retry_must_repeat_the_new_fields_too(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    key = {"Idempotency-Key": "rich-1"}
    body = {"title": "t", "tags": ["a"], "priority": "high", "due_at": "2026-12-24T16:00:00Z"}
    first = await client.post(TASKS, json=body, headers=bearer() | key)
    again = await client.post(TASKS, json=body, headers=bearer() | key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    same_instant = body | {"due_at": "2026-12-24T17:00:00+01:00"}
    elsewhere = await client.post(TASKS, json=same_instant, headers=bearer() | key)
    assert (elsewhere.status_code, elsewhere.json()) == (201, first.json())
    for change in ({"tags": ["b"]}, {"priority": "low"}, {"due_at": None}):
        other = await client.post(TASKS, json=body | change, headers=bearer() | key)
        assert_problem(other, 409, "idempotency_conflict")
    assert await rows.count() == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=bogus", "sort"),
        ("sort=--title", "sort"),
        ("priority=urgent", "priority"),
        ("priority=high,", "priority"),
        ("tag=", "tag"),
        ("tag=" + "x" * 51, "tag"),
        ("due_before=yesterday", "due_before"),
        ("due_before=2026-12-24T16:00:00", "due_before"),
        ("due_after=2026-12-24", "due_after"),
        ("q=", "q"),
        ("q=%20%20", "q"),
        ("q=" + "x" * 201, "q"),
        ("q=a%00b", "q"),
        ("completed=maybe", "completed"),
        ("cursor=nonsense", "cursor"),
        ("due_after=x", "due_after"),
        ("due_before=", "due_before"),
    ],
)
async def test_invalid_list_parameters_are_400_naming_them(
    client: httpx.AsyncClient, query: str, field: str
) -> None:
    response = await client.get(f"{TASKS}?{query}", headers=bearer())
    problem = assert_validation_problem(response)
    # The parameter's own name, once: not a validator's name, nor one error per union member.
    assert [error["field"] for error in problem["errors"]] == [field], problem
    assert problem["detail"].startswith(f"{field} "), problem


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("q=", "must not be empty"),
        ("q=" + "x" * 201, "must be at most 200 characters"),
        ("cursor=" + "x" * 4097, "must be at most 4096 characters"),
        (
            "due_after=2026-12-24",
            "must be an RFC 3339 date-time with an offset, e.g. 2026-12-24T17:00:00Z",
        ),
    ],
)
async def test_a_parameter_error_says_the_rule_in_words(
    client: httpx.AsyncClient, query: str, message: str
) -> None:
    response = await client.get(f"{TASKS}?{query}", headers=bearer())
    problem = assert_validation_problem(response)
    assert [error["message"] for error in problem["errors"]] == [message], problem


async def test_an_unencoded_offset_in_a_query_is_read_as_plus(client: httpx.AsyncClient) -> None:
    await _create(client, due_at="2026-12-24T15:30:00Z")
    # "+01:00" sent unencoded arrives as " 01:00"; both mean 16:00Z.
    for raw in ("2026-12-24T17:00:00+01:00", "2026-12-24T17:00:00%2B01:00"):
        response = await client.get(f"{TASKS}?due_before={raw}", headers=bearer())
        assert response.status_code == 200, response.text
        assert len(response.json()) == 1
