"""Hostile requests on a real ``taskapi serve``: always a 4xx problem, nothing written.

What httpx cannot send (``..`` segments, which it normalises away; raw control bytes in the
request line) and what only the real server limits (a head over 16 KiB is a 431). The in-process
cases (encoded paths, unicode user ids, hostile bodies) are in
``tests/unit/http/test_hostile_input.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from tests.e2e.conftest import Rows
from tests.e2e.helpers import PROBLEM, create
from tests.e2e.served import RawResponse, raw_request, serving
from tests.tokens import make_token

BOBS_TITLE: Final = "bob's secret task"


# --- A real server: what httpx cannot send ------------------------------------------------------


@pytest.fixture(scope="module")
def served(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    """One ``taskapi serve`` for this module's raw-socket tests."""
    with serving(database_url, Path(tmp_path_factory.mktemp("hostile"))) as address:
        yield address


def _token_header(user: str = "alice") -> dict[str, bytes]:
    return {"Authorization": f"Bearer {make_token(user)}".encode("ascii")}


def _problem(response: RawResponse) -> dict[str, Any]:
    assert response.headers.get("content-type", "").split(";")[0] == PROBLEM
    body: dict[str, Any] = json.loads(response.body)
    assert body["status"] == response.status
    assert BOBS_TITLE.encode() not in response.body
    return body


DOT_PATHS: Final[list[tuple[bytes, int]]] = [
    (b"/api/alice/../bob/tasks", 404),
    (b"/api/../api/bob/tasks", 404),
    (b"/api/alice/tasks/../../bob/tasks", 404),
    (b"/api/alice/./tasks", 404),
    (b"/api/./alice/tasks", 404),
    (b"/api/../tasks", 403),
    (b"/api/bob/tasks/..", 403),
    (b"/api/alice/tasks/..", 404),
    (b"/api/alice/tasks/.", 404),
    (b"/api//tasks", 404),
    (b"//api/alice/tasks", 404),
    (b"/api/alice/tasks/1/../2", 404),
]


@pytest.mark.parametrize(("target", "status"), DOT_PATHS, ids=[p.decode() for p, _ in DOT_PATHS])
async def test_dot_segments_on_a_real_server_are_4xx(
    client: httpx.AsyncClient,
    rows: Rows,
    served: tuple[str, int],
    target: bytes,
    status: int,
) -> None:
    await create(client, "bob", BOBS_TITLE)

    for method in ("GET", "POST", "DELETE"):
        body = b'{"title": "hostile"}' if method == "POST" else b""
        response = await asyncio.to_thread(
            raw_request, served, method, target, _token_header(), body
        )
        if response.status == 405:
            _problem(response)
        else:
            assert response.status == status, (method, response)
            _problem(response)
    assert await rows.count() == 1
    assert await rows.count("bob") == 1


@pytest.mark.parametrize(
    "target",
    [
        b"/api/ali\x00ce/tasks",
        b"/api/alice/tasks/1\x00",
        b"/api/ali\x7fce/tasks",
        b"/api/ali\x01ce/tasks",
        b"/api/\xff\xfe/tasks",
        b"/api/%zz%/tasks",
    ],
    ids=repr,
)
async def test_raw_control_and_non_ascii_bytes_in_the_target_are_4xx(
    rows: Rows, clean_tasks: None, served: tuple[str, int], target: bytes
) -> None:
    response = await asyncio.to_thread(
        raw_request, served, "POST", target, _token_header(), b'{"title": "x"}'
    )

    assert 400 <= response.status < 500, response
    assert await rows.count() == 0


async def test_a_10_000_character_user_id_on_a_real_server_is_403(
    rows: Rows, clean_tasks: None, served: tuple[str, int]
) -> None:
    target = b"/api/" + b"a" * 10_000 + b"/tasks"

    response = await asyncio.to_thread(
        raw_request, served, "POST", target, _token_header(), b'{"title": "x"}'
    )

    assert response.status == 403
    assert _problem(response)["code"] == "forbidden"
    assert await rows.count() == 0


async def test_a_token_just_over_the_token_cap_on_a_real_server_is_401(
    rows: Rows, clean_tasks: None, served: tuple[str, int]
) -> None:
    token = make_token("alice", pad="p" * 8 * 1024)
    assert 8 * 1024 < len(token) < 15 * 1024  # over the token cap, within the head limit
    headers = {"Authorization": f"Bearer {token}".encode("ascii")}

    response = await asyncio.to_thread(
        raw_request, served, "POST", b"/api/alice/tasks", headers, b'{"title": "x"}'
    )

    assert response.status == 401
    assert _problem(response)["code"] == "unauthorized"
    assert token.encode() not in response.body
    assert await rows.count() == 0


@pytest.mark.parametrize("size", [16 * 1024, 100 * 1024])
async def test_an_authorization_header_over_the_head_limit_on_a_real_server_is_431(
    rows: Rows, clean_tasks: None, served: tuple[str, int], size: int
) -> None:
    headers = {"Authorization": b"Bearer " + b"A" * size}

    response = await asyncio.to_thread(
        raw_request, served, "POST", b"/api/alice/tasks", headers, b'{"title": "x"}'
    )

    assert response.status == 431
    assert _problem(response)["code"] == "request_header_fields_too_large"
    assert response.headers["connection"] == "close"
    assert b"AAAAAAAAAAAAAAAA" not in response.body
    assert await rows.count() == 0


def media_type_of(response: RawResponse) -> str:
    """The media type of a raw response, without parameters."""
    return response.headers.get("content-type", "").split(";")[0].strip().lower()
