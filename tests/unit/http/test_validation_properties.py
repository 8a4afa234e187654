"""Title and description validation as properties of the HTTP API (Hypothesis).

For any text: the API either answers 201/200 and stores exactly the trimmed title and the
description as sent (read back through GET and straight from the table), or answers 400
``validation_error`` and stores nothing. Which of the two is decided here from docs/api.md's
rules, written independently of the domain code; a 5xx is never an answer.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Final

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.helpers import assert_task_response, assert_validation_problem, create
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks

HEADERS: Final = {**bearer("alice"), "Content-Type": "application/json"}
ABSENT: Final = object()

# Any code point, with lone surrogates (JSON can carry them as \ud800 escapes) and controls
# drawn often enough to matter.
ANY_CHAR: Final = st.one_of(
    st.characters(), st.characters(categories=["Cs"]), st.characters(categories=["Cc"])
)
SPACE: Final = st.text(st.sampled_from(" \t\n\r\u00a0\u2003\u3000\u2028\x1c\x85\ufeff"), max_size=4)
CORE: Final = st.one_of(
    st.lists(ANY_CHAR, max_size=12).map("".join),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.text(st.characters(codec="utf-8"), min_size=495, max_size=505),
    st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1, max_size=20),
)


def _as_received(text: str) -> str:
    """The string a JSON parser reads from what we send: two escaped surrogates that happen to
    form a pair (``\\ud800\\udc00``) arrive as one character (U+10000), not as two."""
    received: str = json.loads(json.dumps(text))
    return received


TITLES: Final = st.builds(lambda head, core, tail: head + core + tail, SPACE, CORE, SPACE).map(
    _as_received
)
DESCRIPTIONS: Final = st.one_of(
    st.just(ABSENT),
    st.none(),
    st.lists(ANY_CHAR, max_size=30).map("".join).map(_as_received),
    st.text(st.characters(codec="utf-8"), min_size=4995, max_size=5005),
)

SETTINGS: Final = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _forbidden(text: str, allowed: str = "") -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cs") and char not in allowed for char in text)


BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
LINE_SEPARATORS = set("\u2028\u2029")


def title_is_valid(title: str) -> bool:
    """docs/api.md: 1-500 characters after ``str.strip``, no control or bidirectional control
    characters, no line or paragraph separator, at least one visible character."""
    trimmed = title.strip()
    return (
        1 <= len(trimmed) <= 500
        and not _forbidden(trimmed)
        and not BIDI_CONTROLS & set(trimmed)
        and not LINE_SEPARATORS & set(trimmed)
        and any(unicodedata.category(char) not in ("Cf", "Zs", "Zl", "Zp") for char in trimmed)
    )


def description_is_valid(description: object) -> bool:
    """docs/api.md: null, or up to 5000 characters as sent; tab, LF and CR the only controls."""
    if description is ABSENT or description is None:
        return True
    assert isinstance(description, str)
    return len(description) <= 5000 and not _forbidden(description, "\t\n\r")


def _body(**fields: object) -> bytes:
    sent = {name: value for name, value in fields.items() if value is not ABSENT}
    return json.dumps(sent).encode("ascii")  # ASCII: lone surrogates travel as escapes


async def _assert_stored(
    client: httpx.AsyncClient,
    rows: StoredTasks,
    task: dict[str, Any],
    title: str,
    description: object,
) -> None:
    expected_description = None if description is ABSENT else description
    assert task["title"] == title
    fetched = assert_task_response(
        await client.get(f"/api/alice/tasks/{task['id']}", headers=HEADERS), 200, user="alice"
    )
    assert fetched["title"] == title
    row = await rows.get(task["id"])
    assert row is not None
    assert row["title"] == title
    if description is not ABSENT:
        assert task["description"] == expected_description
        assert fetched["description"] == expected_description
        assert row["description"] == expected_description


@SETTINGS
@given(title=TITLES, description=DESCRIPTIONS)
async def test_create_stores_exactly_the_trimmed_title_or_refuses_with_nothing_stored(
    client: httpx.AsyncClient, rows: StoredTasks, title: str, description: object
) -> None:
    before = await rows.count()

    response = await client.post(
        "/api/alice/tasks", content=_body(title=title, description=description), headers=HEADERS
    )

    assert response.status_code < 500, response.text
    if title_is_valid(title) and description_is_valid(description):
        task = assert_task_response(response, 201, user="alice")
        await _assert_stored(client, rows, task, title.strip(), description)
        assert await rows.count() == before + 1
    else:
        assert_validation_problem(response)
        assert await rows.count() == before


@SETTINGS
@given(title=st.one_of(st.just(ABSENT), TITLES), description=DESCRIPTIONS)
async def test_update_stores_exactly_the_trimmed_title_or_changes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks, title: object, description: object
) -> None:
    task = await create(client, "alice", "before", "kept")
    before = await rows.get(task["id"])
    assert before is not None
    if title is ABSENT and description is ABSENT:
        description = "at least one field"

    response = await client.put(
        f"/api/alice/tasks/{task['id']}",
        content=_body(title=title, description=description),
        headers=HEADERS,
    )

    assert response.status_code < 500, response.text
    title_ok = title is ABSENT or (isinstance(title, str) and title_is_valid(title))
    if title_ok and description_is_valid(description):
        updated = assert_task_response(response, 200, user="alice")
        expected_title = "before" if title is ABSENT else str(title).strip()
        await _assert_stored(client, rows, updated, expected_title, description)
        assert updated["version"] == before["version"] + 1
        if description is ABSENT:
            assert updated["description"] == "kept"
    else:
        assert_validation_problem(response)
        assert await rows.get(task["id"]) == before
