"""Hostile paths and bodies: always a 4xx problem, never a 5xx, never a hang, nothing written.

Encoded slashes and dots, NUL, ``%`` garbage, very long and unicode user ids, and hostile JSON
bodies. What httpx cannot send (``..`` segments, raw control bytes in the request line) and what
only the real server limits are in ``tests/e2e/test_hostile_input.py``.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Awaitable
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.helpers import assert_problem, assert_task_response, create
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks

T = TypeVar("T")
LIMIT_SECONDS: Final = 10.0
ALICE: Final = bearer("alice")
ALICE_JSON: Final = {**ALICE, "Content-Type": "application/json"}
BOBS_TITLE: Final = "bob's secret task"


async def bounded(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``, failing the test if it takes longer than ``LIMIT_SECONDS``."""
    async with asyncio.timeout(LIMIT_SECONDS):
        return await awaitable


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> dict[str, Any]:
    """One task of alice's (returned) and one of bob's, before each hostile request."""
    await create(client, "bob", BOBS_TITLE)
    return await create(client, "alice", "alice's task")


def _refused(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert_problem(response, status, code)
    assert BOBS_TITLE not in response.text


# --- Paths, in process --------------------------------------------------------------------------

# (path under /api, expected status, code) with alice's token; alice's task is id 2, bob's id 1.
HOSTILE_PATHS: Final[list[tuple[str, int, str]]] = [
    ("/api/alice%2Fbob/tasks", 404, "not_found"),
    ("/api/alice%2F..%2Fbob/tasks", 404, "not_found"),
    ("/api/bob%2F..%2Falice/tasks", 404, "not_found"),
    ("/api/alice/tasks/1%2F2", 404, "not_found"),
    ("/api/alice/tasks/%2F2", 404, "not_found"),
    ("/api/%2E%2E/tasks", 403, "forbidden"),
    ("/api/%2e%2e%2fbob/tasks", 404, "not_found"),
    ("/api/alice/tasks/%2E%2E", 404, "task_not_found"),
    ("/api/alice/tasks/%2E", 404, "task_not_found"),
    ("/api/ali%00ce/tasks", 403, "forbidden"),
    ("/api/alice%00/tasks", 403, "forbidden"),
    ("/api/%00/tasks", 403, "forbidden"),
    ("/api/alice/tasks/2%00", 404, "task_not_found"),
    ("/api/alice/tasks/%002", 404, "task_not_found"),
    ("/api/alice/tasks/%00", 404, "task_not_found"),
    ("/api/%zz/tasks", 403, "forbidden"),
    ("/api/%/tasks", 403, "forbidden"),
    ("/api/alice%/tasks", 403, "forbidden"),
    ("/api/%ff%fe/tasks", 403, "forbidden"),
    ("/api/%E2%80/tasks", 403, "forbidden"),
    ("/api/%25/tasks", 403, "forbidden"),
    ("/api/alice%25/tasks", 403, "forbidden"),
    ("/api/alice/tasks/%zz", 404, "task_not_found"),
    ("/api/alice/tasks/%", 404, "task_not_found"),
    ("/api/alice/tasks/%ff", 404, "task_not_found"),
    ("/api/alice/tasks/2%", 404, "task_not_found"),
    ("/api/alice%0A/tasks", 403, "forbidden"),
    ("/api/alice%0D%0AX-Injected:%201/tasks", 403, "forbidden"),
    ("/api/%20alice/tasks", 403, "forbidden"),
    ("/api/alice%20/tasks", 403, "forbidden"),
    ("/api/" + "a" * 300 + "/tasks", 403, "forbidden"),
    ("/api/" + "a" * 10_000 + "/tasks", 403, "forbidden"),
    ("/api/alice/tasks/" + "2" * 300, 404, "task_not_found"),
    ("/api/alice/tasks/" + "9" * 10_000, 404, "task_not_found"),
]
PATH_IDS: Final = [
    path if len(path) < 60 else f"{path[:40]}…({len(path)})" for path, _, _ in HOSTILE_PATHS
]


@pytest.mark.parametrize(("path", "status", "code"), HOSTILE_PATHS, ids=PATH_IDS)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_hostile_path_is_a_4xx_problem_and_writes_nothing(
    client: httpx.AsyncClient,
    rows: StoredTasks,
    seeded: dict[str, Any],
    method: str,
    path: str,
    status: int,
    code: str,
) -> None:
    before = await rows.get(seeded["id"])
    target = path + "/complete" if method == "PATCH" else path

    response = await bounded(
        client.request(method, target, json={"title": "hostile"}, headers=ALICE)
    )

    assert 400 <= response.status_code < 500, response.text
    if response.status_code == 405:
        # A path that is a collection for one method and nothing for another.
        _refused(response, 405, "method_not_allowed")
    else:
        _refused(response, status, code)
    assert await rows.count() == 2
    assert await rows.get(seeded["id"]) == before


@pytest.mark.parametrize("length", [256, 300, 10_000])
async def test_token_for_a_very_long_user_id_is_401(
    client: httpx.AsyncClient, rows: StoredTasks, length: int
) -> None:
    user = "u" * length
    response = await bounded(
        client.post(f"/api/{user}/tasks", json={"title": "x"}, headers=bearer(user))
    )

    _refused(response, 401, "unauthorized")
    assert await rows.count() == 0


async def test_the_longest_user_id_works(client: httpx.AsyncClient, rows: StoredTasks) -> None:
    user = "u" * 255
    created = await client.post(f"/api/{user}/tasks", json={"title": "x"}, headers=bearer(user))

    assert_task_response(created, 201, user=user)
    assert await rows.count(user) == 1


UNICODE_USERS: Final = [
    "ünïcødé",
    "用户",
    "😀-emoji",
    "Ωmega",
    "percent%20sign",
    "e\u0301",  # NFD: e + combining acute
    "\u202ealice",  # right-to-left override
    "a b",
]


@pytest.mark.parametrize("user", UNICODE_USERS, ids=repr)
async def test_unicode_user_id_matching_the_token_works(
    client: httpx.AsyncClient, rows: StoredTasks, user: str
) -> None:
    headers = bearer(user)
    base = f"/api/{quote(user, safe='')}/tasks"

    created = await bounded(client.post(base, json={"title": "mine"}, headers=headers))
    task = assert_task_response(created, 201, user=user)
    assert created.headers["location"] == f"{base}/{task['id']}"
    fetched = await bounded(client.get(created.headers["location"], headers=headers))
    listed = await bounded(client.get(base, headers=headers))
    completed = await bounded(client.patch(f"{base}/{task['id']}/complete", headers=headers))

    assert assert_task_response(fetched, 200, user=user) == task
    assert [item["id"] for item in listed.json()] == [task["id"]]
    assert assert_task_response(completed, 200, user=user)["completed"] is True
    row = await rows.get(task["id"])
    assert row is not None
    assert row["user_id"] == user
    assert await rows.count(user) == 1


async def test_a_user_id_with_a_slash_never_reaches_another_users_tasks(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    # A valid user id may hold "/", but "%2F" is decoded before routing, so its path names no
    # route: today a 404 (reported as a finding). Working for its owner would be fine too;
    # reaching "alice" (the part before the slash) or writing anywhere else is not.
    await create(client, "alice", BOBS_TITLE)
    user = "alice/x"
    base = f"/api/{quote(user, safe='')}/tasks"

    listed = await bounded(client.get(base, headers=bearer(user)))
    created = await bounded(client.post(base, json={"title": "mine"}, headers=bearer(user)))

    assert BOBS_TITLE not in listed.text
    if created.status_code == 201:
        assert_task_response(created, 201, user=user)
        assert await rows.count(user) == 1
    else:
        _refused(created, 404, "not_found")
        _refused(listed, 404, "not_found")
        assert await rows.count(user) == 0
    assert await rows.count("alice") == 1
    assert await rows.count() == 1 + await rows.count(user)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# (the token's user, the user named in the path): look-alikes are other users, never the same.
LOOKALIKES: Final = [
    ("é", "e\u0301"),  # NFC in the token, NFD in the path
    ("e\u0301", _nfc("e\u0301")),
    ("alice", "\u0430lice"),  # Cyrillic a
    ("alice", "ALICE"),
    ("alice", "\uff41\uff4c\uff49\uff43\uff45"),  # fullwidth
    ("alice", "alice\u200b"),  # zero-width space
    ("alice", "\u202ealice"),
    ("straße", "strasse"),
    ("用户", "用戶"),
]


@pytest.mark.parametrize(("token_user", "path_user"), LOOKALIKES, ids=repr)
async def test_unicode_user_id_not_matching_the_token_is_403(
    client: httpx.AsyncClient, rows: StoredTasks, token_user: str, path_user: str
) -> None:
    await create(client, path_user, BOBS_TITLE)
    base = f"/api/{quote(path_user, safe='')}/tasks"
    headers = bearer(token_user)

    listed = await bounded(client.get(base, headers=headers))
    created = await bounded(client.post(base, json={"title": "x"}, headers=headers))
    fetched = await bounded(client.get(f"{base}/1", headers=headers))

    for response in (listed, created, fetched):
        _refused(response, 403, "forbidden")
    assert await rows.count() == 1
    assert await rows.count(token_user) == 0


# A trailing slash (also as ``%2F``) names no route: a 404 problem, never a redirect (Starlette's
# default 307 is absolute, built from the client's Host header, and comes before authentication).
TRAILING: Final = [
    "/api/alice/tasks/",
    "/api/alice/tasks/2/",
    "/api/alice/tasks/2%2F",
    "/api/bob/tasks/",
    "/api/bob/tasks/1/",
    "/api/alice/tasks/2/complete/",
]


@pytest.mark.parametrize("path", TRAILING)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_trailing_slash_is_404_and_writes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks, seeded: dict[str, Any], method: str, path: str
) -> None:
    before = await rows.get(seeded["id"])

    for headers in (ALICE, {}):
        response = await bounded(
            client.request(method, path, json={"title": "hostile"}, headers=headers)
        )

        assert BOBS_TITLE not in response.text
        _refused(response, 404, "not_found")
    assert await rows.count() == 2
    assert await rows.get(seeded["id"]) == before


# --- Bodies, in process -------------------------------------------------------------------------


def _nested(depth: int, value: bytes = b"1") -> bytes:
    return b"[" * depth + value + b"]" * depth


HOSTILE_BODIES: Final[dict[str, tuple[bytes, int]]] = {
    "100 000 nested arrays as title": (b'{"title": ' + _nested(100_000) + b"}", 413),
    "30 000 nested arrays as title": (b'{"title": ' + _nested(30_000) + b"}", 400),
    "1 000 nested arrays as title": (b'{"title": ' + _nested(1_000) + b"}", 400),
    "10 000 nested objects as description": (
        b'{"title": "x", "description": ' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}",
        400,
    ),
    "nested arrays as the body": (_nested(30_000), 400),
    "title 1e999999": (b'{"title": 1e999999}', 400),
    "title -1e-999999": (b'{"title": -1e-999999}', 400),
    "title with 5000 digits": (b'{"title": ' + b"9" * 5000 + b"}", 400),
    "description with 5000 digits": (b'{"title": "x", "description": ' + b"9" * 5000 + b"}", 400),
    "description 1e308 squared": (b'{"title": "x", "description": 1e616}', 400),
    "completed 1e999999": (b'{"completed": 1e999999}', 400),
    "title NaN": (b'{"title": NaN}', 400),
    "title Infinity": (b'{"title": Infinity}', 400),
    "description -Infinity": (b'{"title": "x", "description": -Infinity}', 400),
    "completed NaN": (b'{"title": "x", "completed": NaN}', 400),
    "invalid UTF-8 in title": (b'{"title": "\xff\xfe"}', 400),
    "truncated UTF-8 in title": (b'{"title": "\xe2\x82"}', 400),
    "overlong UTF-8 slash": (b'{"title": "\xc0\xaf"}', 400),
    "UTF-8-encoded surrogate": (b'{"title": "\xed\xa0\x80"}', 400),
    "invalid UTF-8 outside strings": (b'{"title": "x"\xff}', 400),
    # JSON text in UTF-16 or UTF-32 is decoded as such (RFC 8259 8.1 names UTF-8 for interchange;
    # the parser detects the others): the same task, not a way around any rule.
    "UTF-16 LE with BOM": (b"\xff\xfe" + '{"title": "x"}'.encode("utf-16-le"), 201),
    "UTF-16 BE with BOM": (b"\xfe\xff" + '{"title": "x"}'.encode("utf-16-be"), 201),
    "UTF-16 without BOM": ('{"title": "x"}'.encode("utf-16-le"), 201),
    "UTF-32 with BOM": ('{"title": "x"}'.encode("utf-32"), 201),
    "raw NUL in a string": (b'{"title": "a\x00b"}', 400),
    "escaped NUL in title": (b'{"title": "a\\u0000b"}', 400),
    "60 KiB title": (b'{"title": "' + b"x" * 60 * 1024 + b'"}', 400),
    "60 KiB description": (b'{"title": "x", "description": "' + b"d" * 60 * 1024 + b'"}', 400),
    "60 KiB of white space around a title": (
        b'{"title": "' + b" " * 30 * 1024 + b"x" + b" " * 30 * 1024 + b'"}',
        201,
    ),
    "60 KiB key": (b'{"' + b"k" * 60 * 1024 + b'": 1, "title": "x"}', 400),
    "6 000 unknown keys": (
        b"{" + b",".join(b'"k%d": 1' % number for number in range(6_000)) + b', "title": "x"}',
        400,
    ),
    "unterminated string": (b'{"title": "' + b"x" * 1000, 400),
    "comment": (b'{"title": "x" /* hi */}', 400),
    "single quotes": (b"{'title': 'x'}", 400),
    "JSON in a JSON string": (b'"{\\"title\\": \\"x\\"}"', 400),
    "prototype pollution keys": (b'{"title": "x", "__proto__": {"admin": true}}', 400),
    "constructor key": (b'{"title": "x", "constructor": {"prototype": {}}}', 400),
}


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
async def test_hostile_create_body_is_a_4xx_problem_and_writes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks, name: str
) -> None:
    raw, status = HOSTILE_BODIES[name]
    if status == 201:
        # Not hostile after all: trimmed white space, or another Unicode encoding of the JSON.
        response = await bounded(client.post("/api/alice/tasks", content=raw, headers=ALICE_JSON))
        assert assert_task_response(response, 201, user="alice")["title"] == "x"
        return

    response = await bounded(client.post("/api/alice/tasks", content=raw, headers=ALICE_JSON))

    _refused(response, status, "validation_error" if status == 400 else "payload_too_large")
    assert await rows.count() == 0


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
async def test_hostile_update_body_is_a_4xx_problem_and_changes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks, seeded: dict[str, Any], name: str
) -> None:
    raw, status = HOSTILE_BODIES[name]
    raw = raw.replace(b'"title": "x", ', b"").replace(b', "title": "x"', b"")
    before = await rows.get(seeded["id"])

    response = await bounded(
        client.put(f"/api/alice/tasks/{seeded['id']}", content=raw, headers=ALICE_JSON)
    )

    if status == 201:
        assert assert_task_response(response, 200, user="alice")["title"] == "x"
        return
    _refused(response, status, "validation_error" if status == 400 else "payload_too_large")
    assert await rows.get(seeded["id"]) == before
    assert await rows.count() == 2


# Duplicate keys. RFC 8259 leaves their meaning open and RFC 7493 forbids them: Python's parser
# keeps the last value, a proxy or a log reader may have read the first. Each is a 400 naming it.
DUPLICATES: Final[list[tuple[bytes, str]]] = [
    (b'{"title": "first", "title": "last"}', "title"),
    (b'{"title": "same", "title": "same"}', "title"),
    (b'{"title": "a", "description": "d1", "description": "d2"}', "description"),
    (b'{"title": "\\u0000", "title": "clean"}', "title"),
    (b'{"title": "clean", "title": 5}', "title"),
    (b'{"title": "x", "tags": ["a"], "tags": ["b"]}', "tags"),
    (b'{"title": "x", "id": 1, "id": 2}', "id"),
    (b'{"title": "x", "extra": {"k": 1, "k": 2}}', "k"),
]


@pytest.mark.parametrize(("raw", "key"), DUPLICATES, ids=repr)
async def test_a_duplicate_key_is_400_naming_it_and_writes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks, seeded: dict[str, Any], raw: bytes, key: str
) -> None:
    before = await rows.get(seeded["id"])

    created = await bounded(client.post("/api/alice/tasks", content=raw, headers=ALICE_JSON))
    updated = await bounded(
        client.put(f"/api/alice/tasks/{seeded['id']}", content=raw, headers=ALICE_JSON)
    )

    for response in (created, updated):
        _refused(response, 400, "validation_error")
        assert response.json()["errors"] == [{"field": key, "message": "is given more than once"}]
    assert await rows.count() == 2
    assert await rows.get(seeded["id"]) == before


async def test_a_duplicate_key_is_judged_after_the_caller(client: httpx.AsyncClient) -> None:
    raw = b'{"title": "first", "title": "last"}'
    json_only = {"Content-Type": "application/json"}

    anonymous = await bounded(client.post("/api/alice/tasks", content=raw, headers=json_only))
    forbidden = await bounded(
        client.post("/api/alice/tasks", content=raw, headers={**json_only, **bearer("bob")})
    )

    assert_problem(anonymous, 401, "unauthorized")
    assert_problem(forbidden, 403, "forbidden")
