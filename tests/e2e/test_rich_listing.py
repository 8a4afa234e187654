"""Filters, search, sort orders and paging as PostgreSQL runs them, with exact expected results.

One board of alice's tasks (and bob's look-alikes, which must never show up), listed every way
the contract allows; expected results are written out by hand for each filter and order.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Final
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.helpers import assert_task, assert_validation_problem
from tests.tokens import bearer

ALICE_TASKS: Final = "/api/alice/tasks"

# (title, description, due_at, priority, tags); numbered 1-6 in creation order. 3 and 5 end up
# complete. 1 and 4 are due at the same instant; 1 and 5 have the same title but for case.
Row = tuple[str, str | None, str | None, str, list[str]]
BOARD: Final[tuple[Row, ...]] = (
    ("Buy milk", "2 litres, organic", "2026-12-24T16:00:00Z", "high", ["errands", "home"]),
    ("Call Mum", None, None, "medium", ["family"]),
    ("file taxes", "Before the DEADLINE", "2026-12-01T09:00:00Z", "high", ["admin", "home"]),
    ("Zoé: écrire une carte", "carte de vœux", "2026-12-24T17:00:00+01:00", "low", ["family"]),
    ("buy milk", "again!", None, "none", []),
    (
        "Plan trip",
        "Kyoto 100% sure_maybe",
        "2027-03-01T00:00:00+09:00",
        "medium",
        ["travel", "home"],
    ),
)
# Bob's tasks match most filters alice's do; none may ever appear in alice's listings.
BOBS: Final[tuple[Row, ...]] = (
    ("Buy milk", "organic, for bob", "2026-12-20T00:00:00Z", "high", ["errands", "home"]),
    ("Zoé", "100% bob_s", None, "none", ["family", "bob-only"]),
)


async def _add(client: httpx.AsyncClient, user: str, fields: tuple[Any, ...]) -> dict[str, Any]:
    title, description, due_at, priority, tags = fields
    body = {"title": title, "description": description, "due_at": due_at}
    response = await client.post(
        f"/api/{user}/tasks",
        json=body | {"priority": priority, "tags": tags},
        headers=bearer(user),
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


@pytest.fixture
async def board(client: httpx.AsyncClient) -> dict[int, int]:
    """Alice's six tasks by their number on the board: number -> id."""
    ids = {n: (await _add(client, "alice", fields))["id"] for n, fields in enumerate(BOARD, 1)}
    for fields in BOBS:
        await _add(client, "bob", fields)
    for n in (3, 5):
        done = await client.patch(f"{ALICE_TASKS}/{ids[n]}/complete", headers=bearer())
        assert done.status_code == 200
    return ids


async def _listed(client: httpx.AsyncClient, query: str) -> tuple[list[int], int]:
    response = await client.get(f"{ALICE_TASKS}?{query}", headers=bearer())
    assert response.status_code == 200, response.text
    tasks = response.json()
    for task in tasks:
        assert_task(task, user="alice")
    return [task["id"] for task in tasks], int(response.headers["X-Total-Count"])


FILTERS: Final = [
    ("completed=true", [3, 5]),
    ("completed=false", [1, 2, 4, 6]),
    ("priority=high", [1, 3]),
    ("priority=high,medium", [1, 2, 3, 6]),
    ("priority=high&priority=medium", [1, 2, 3, 6]),
    ("priority=none", [5]),
    ("tag=home", [1, 3, 6]),
    ("tag=HOME", [1, 3, 6]),  # a filter's tag is normalised as a task's is
    ("tag=home&tag=errands", [1]),
    ("tag=bob-only", []),
    ("due_before=2026-12-24T16:00:00Z", [3]),  # strictly before; undated never match
    ("due_before=2026-12-24T16:00:00.000001Z", [1, 3, 4]),
    ("due_before=" + quote("2026-12-24T17:00:00+01:00"), [3]),
    ("due_after=2026-12-24T16:00:00Z", [1, 4, 6]),  # at or after
    ("due_after=2026-12-01T09:00:00Z&due_before=2026-12-24T16:00:00Z", [3]),
    ("q=milk", [1, 5]),
    ("q=MILK%20buy", [1, 5]),  # every word, any case, any order
    ("q=milk%20organic", [1]),  # a word in the title, another in the description
    ("q=deadline%20before", [3]),
    ("q=" + quote("ZOÉ"), [4]),  # Unicode case-insensitive
    ("q=" + quote("vœux"), [4]),
    ("q=" + quote("100%"), [6]),  # LIKE's wildcards are plain characters
    ("q=" + quote("%"), [6]),
    ("q=_", [6]),
    ("q=sure_maybe", [6]),
    ("q=" + quote("litres,"), [1]),
    ("q=nothing-like-it", []),
    ("completed=false&tag=home&priority=high", [1]),
    ("q=buy&completed=true", [5]),
    ("completed=false&due_before=2027-01-01T00:00:00Z&sort=due_at", [1, 4]),
    ("tag=family&priority=low,none&q=" + quote("écrire"), [4]),
]


async def test_each_filter_selects_exactly_the_matching_tasks_of_the_caller(
    client: httpx.AsyncClient, board: dict[int, int]
) -> None:
    wrong = {}
    for query, numbers in FILTERS:
        ids, total = await _listed(client, query)
        expected = sorted(board[n] for n in numbers)
        if (sorted(ids), total) != (expected, len(numbers)):
            wrong[query] = (sorted(ids), total, expected)
    assert wrong == {}


async def test_search_folds_final_sigma_and_sharp_s_as_case_does(
    client: httpx.AsyncClient,
) -> None:
    # lower() alone keeps ς apart from σ and ß apart from ss.
    titles = ("ΣΊΣΥΦΟΣ", "Myth: σίσυφος", "Straße", "STRASSE", "Strasbourg")
    ids = [(await _add(client, "alice", (t, None, None, "none", [])))["id"] for t in titles]
    searches = {
        "σίσυφος": [0, 1],
        "ΣΊΣΥΦΟΣ": [0, 1],
        "σίσυφοσ": [0, 1],
        "σίσυφ": [0, 1],
        "straße": [2, 3],
        "STRASSE": [2, 3],
        "ẞ": [2, 3],  # capital sharp s
        "stras": [2, 3, 4],
        "straß": [2, 3],
    }
    found = {q: (await _listed(client, "q=" + quote(q)))[0] for q in searches}
    assert found == {q: [ids[n] for n in numbers] for q, numbers in searches.items()}


# After 3 and 5 were completed (the two most recently updated).
ORDERS: Final = {
    "created_at": [1, 2, 3, 4, 5, 6],
    "updated_at": [1, 2, 4, 6, 3, 5],
    "due_at": [3, 1, 4, 6, 2, 5],  # 1 and 4 tie on the instant: by id; undated last, by id
    "-due_at": [6, 4, 1, 3, 5, 2],  # undated last again, by id descending
    "priority": [5, 4, 2, 6, 1, 3],  # none < low < medium < high, ties by id
    "-priority": [3, 1, 6, 2, 4, 5],
    "title": [1, 5, 2, 3, 6, 4],  # case-insensitive: "Buy milk" and "buy milk" tie, by id
    "-title": [4, 6, 3, 2, 5, 1],
}


SORTS: Final = [*ORDERS, "-created_at", "-updated_at"]


def _expected(sort: str) -> list[int]:
    return ORDERS.get(sort) or ORDERS[sort.removeprefix("-")][::-1]


async def test_each_sort_order_is_exact_with_ties_by_id(
    client: httpx.AsyncClient, board: dict[int, int]
) -> None:
    wrong = {}
    for sort in SORTS:
        ids, total = await _listed(client, f"sort={sort}")
        expected = [board[n] for n in _expected(sort)]
        if (ids, total) != (expected, 6):
            wrong[sort] = (ids, total, expected)
    assert wrong == {}


async def test_paging_each_order_while_tasks_are_added_skips_and_repeats_nothing(
    client: httpx.AsyncClient, board: dict[int, int]
) -> None:
    for sort in SORTS:
        url = f"{ALICE_TASKS}?sort={sort}&limit=2"
        seen: list[int] = []
        for page in itertools.count():
            response = await client.get(url, headers=bearer())
            assert response.status_code == 200, response.text
            seen += [task["id"] for task in response.json()]
            if page < 3:  # a task created between pages: due early, important, titled "aaa"
                await _add(client, "alice", ("aaa", None, "2026-01-01T00:00:00Z", "high", []))
            link = response.headers.get("Link")
            if link is None:
                break
            url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1)  # type: ignore[union-attr]  # matched
        assert len(seen) == len(set(seen)), (sort, seen)  # nothing twice
        existing = [board[n] for n in _expected(sort)]
        assert [i for i in seen if i in existing] == existing, sort  # all that existed, in order


async def test_the_next_link_keeps_every_filter_and_the_order(
    client: httpx.AsyncClient, board: dict[int, int]
) -> None:
    query = (
        "completed=false&priority=high,medium&tag=home&q=" + quote("i") + "&sort=-due_at&limit=1"
    )
    first = await client.get(f"{ALICE_TASKS}?{query}", headers=bearer())
    assert [t["id"] for t in first.json()] == [board[6]]
    assert first.headers["X-Total-Count"] == "2"
    link = first.headers["Link"]
    for part in ("completed=false", "priority=medium%2Chigh", "tag=home", "q=i", "sort=-due_at"):
        assert part in link, link
    url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1)  # type: ignore[union-attr]  # matched
    second = await client.get(url, headers=bearer())
    assert [t["id"] for t in second.json()] == [board[1]]
    assert "Link" not in second.headers


async def test_a_cursor_is_refused_with_another_filter_order_or_user(
    client: httpx.AsyncClient, board: dict[int, int]
) -> None:
    first = await client.get(f"{ALICE_TASKS}?sort=title&tag=home&limit=1", headers=bearer())
    cursor = re.search(r"cursor=([^&>]+)", first.headers["Link"]).group(1)  # type: ignore[union-attr]  # present
    for query in (
        "sort=-title&tag=home",
        "sort=priority&tag=home",
        "sort=title",
        "sort=title&tag=home&q=x",
        "sort=title&tag=home&completed=false",
    ):
        refused = await client.get(f"{ALICE_TASKS}?{query}&cursor={cursor}", headers=bearer())
        problem = assert_validation_problem(refused, "cursor")
        assert problem["detail"] == "cursor was made for another filter or sort order"
    as_bob = await client.get(
        f"/api/bob/tasks?sort=title&tag=home&cursor={cursor}", headers=bearer("bob")
    )
    assert assert_validation_problem(as_bob, "cursor")["detail"] == "cursor is not valid"
    same = await client.get(
        f"{ALICE_TASKS}?tag=home&sort=title&limit=1&cursor={cursor}", headers=bearer()
    )
    assert same.status_code == 200


async def test_a_cursor_past_a_long_title_still_fits(client: httpx.AsyncClient) -> None:
    for n in range(2):
        await _add(client, "alice", ("ж" * 499 + str(n), None, None, "none", []))
    first = await client.get(f"{ALICE_TASKS}?sort=title&limit=1", headers=bearer())
    url = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["Link"]).group(1)  # type: ignore[union-attr]  # matched
    second = await client.get(url, headers=bearer())
    assert [t["title"][-1] for t in second.json()] == ["1"]


async def test_the_tags_endpoint_counts_the_callers_tasks_per_tag(
    client: httpx.AsyncClient, board: dict[int, int]
) -> None:
    response = await client.get("/api/alice/tags", headers=bearer())
    assert response.status_code == 200
    assert response.json() == [
        {"tag": "admin", "count": 1},
        {"tag": "errands", "count": 1},
        {"tag": "family", "count": 2},
        {"tag": "home", "count": 3},
        {"tag": "travel", "count": 1},
    ]
    assert (await client.get("/api/carol/tags", headers=bearer("carol"))).json() == []
    refused = await client.get("/api/bob/tags", headers=bearer("alice"))
    assert refused.status_code == 403


async def test_a_tag_typed_with_a_combining_accent_is_the_composed_tag(
    client: httpx.AsyncClient,
) -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    first = await _add(client, "alice", ("one", None, None, "none", [decomposed]))
    second = await _add(
        client, "alice", ("two", None, None, "none", [composed.upper(), decomposed])
    )
    assert first["tags"] == second["tags"] == [composed]
    for spelled in (composed, decomposed):
        found, total = await _listed(client, f"tag={quote(spelled)}")
        assert (found, total) == ([first["id"], second["id"]], 2)
    tags = await client.get("/api/alice/tags", headers=bearer())
    assert tags.json() == [{"tag": composed, "count": 2}]


async def test_the_first_and_last_instants_are_due_dates_like_any_other(
    client: httpx.AsyncClient,
) -> None:
    # PostgreSQL's drivers store these two as -infinity and infinity: they must still come back
    # as the instants sent, sort, page, filter and sync like any due date.
    first, last = "0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z"
    ids: dict[str | None, list[int]] = {}
    for due in (last, "2026-12-24T16:00:00.000000Z", first, None, last):
        task = await _add(client, "alice", ("edge", None, due, "none", []))
        assert task["due_at"] == due
        ids.setdefault(due, []).append(task["id"])
    dated = [*ids[first], *ids["2026-12-24T16:00:00.000000Z"], *ids[last]]
    for sort, expected in (("due_at", dated), ("-due_at", dated[::-1])):
        seen: list[int] = []
        url = f"{ALICE_TASKS}?sort={sort}&limit=1"
        while url:
            response = await client.get(url, headers=bearer())
            assert response.status_code == 200, response.text
            seen += [task["id"] for task in response.json()]
            link = response.headers.get("Link")
            url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else ""  # type: ignore[union-attr]  # matched
        assert seen == [*expected, *ids[None]], sort  # undated last either way
    for task_id in ids[first] + ids[last]:
        fetched = await client.get(f"{ALICE_TASKS}/{task_id}", headers=bearer())
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["due_at"] in (first, last)
    before_last, _ = await _listed(client, f"due_before={quote(last)}")
    assert sorted(before_last) == sorted(ids[first] + ids["2026-12-24T16:00:00.000000Z"])
    from_first, _ = await _listed(client, f"due_after={quote(first)}")
    assert sorted(from_first) == sorted(dated)
    feed = await client.get(f"{ALICE_TASKS}/changes", headers=bearer())
    assert feed.status_code == 200, feed.text
    moved = await client.put(
        f"{ALICE_TASKS}/{ids[last][0]}", json={"due_at": first}, headers=bearer()
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["due_at"] == first
