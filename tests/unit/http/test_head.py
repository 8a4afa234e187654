"""``HEAD`` answers as ``GET`` would, without the body (RFC 9110, 9.3.2).

Checked here on the in-process app (status and headers); ``tests/e2e/test_real_server.py``
checks on a real server that not one byte of the body is sent.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import create
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks

_SAME_HEADERS = ("content-type", "content-length", "etag", "x-total-count")


def _same_but_body(head: httpx.Response, get: httpx.Response) -> None:
    assert head.status_code == get.status_code
    for name in _SAME_HEADERS:
        assert head.headers.get(name) == get.headers.get(name), name
    # A cursor is sealed with a fresh nonce each time: the same link up to it.
    assert (
        head.headers.get("link", "").partition("cursor=")[0]
        == get.headers.get("link", "").partition("cursor=")[0]
    )
    assert head.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/api/alice/tasks/{id}",
        "/api/alice/tasks?limit=1&sort=-created_at",
        "/api/alice/tasks?completed=false&tag=home",
        "/api/alice/tags",
        "/api/alice/tasks/changes?limit=1",
        "/healthz",
        "/readyz",
    ],
)
async def test_head_gives_the_get_headers_without_the_body(
    client: httpx.AsyncClient, rows: StoredTasks, path: str
) -> None:
    created = await client.post(
        "/api/alice/tasks", json={"title": "Buy milk", "tags": ["home"]}, headers=bearer()
    )
    task = created.json()
    await create(client, "alice", "Call mum")
    target = path.format(id=task["id"])
    before = await rows.count()

    head = await client.head(target, headers=bearer())
    get = await client.get(target, headers=bearer())

    assert get.status_code == 200
    _same_but_body(head, get)
    assert await rows.count() == before


async def test_head_takes_the_same_conditions_and_checks_as_get(
    client: httpx.AsyncClient,
) -> None:
    task = await create(client, "alice")
    path = f"/api/alice/tasks/{task['id']}"

    unchanged = await client.head(path, headers={**bearer(), "If-None-Match": '"1"'})
    assert unchanged.status_code == 304
    assert unchanged.headers["etag"] == '"1"'

    assert (await client.head(path)).status_code == 401
    assert (await client.head(path.replace("alice", "bob"), headers=bearer())).status_code == 403
    assert (await client.head(f"{path}0", headers=bearer())).status_code == 404


async def test_an_event_stream_has_no_head(client: httpx.AsyncClient) -> None:
    response = await client.head("/api/alice/events", headers=bearer())

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_head_is_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()

    methods = {method for operations in document["paths"].values() for method in operations}
    assert "head" not in methods
    assert "get" in methods
