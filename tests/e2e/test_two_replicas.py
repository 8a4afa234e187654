"""Two replicas, one database: two ``taskapi serve`` processes behind one PgBouncer.

Both connect through a real PgBouncer in transaction mode (``DATABASE_POOLER=transaction``), as
replicas on Neon's pooled endpoint would. Requests alternate between them; every answer must be
what one process would have given: ETags, idempotency keys and paging cursors hold across
replicas, because nothing a later request needs lives in a process's memory.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.conftest import Rows
from tests.e2e.helpers import assert_problem, assert_task_response
from tests.pgbouncer import PgBouncer, needs_pgbouncer
from tests.process import taskapi_serve
from tests.tokens import SECRET, bearer

NEXT = re.compile(r'^<([^>]+)>; rel="next"$')

pytestmark = needs_pgbouncer


@pytest.fixture(scope="module")
def replica_urls(
    pgbouncer: PgBouncer, direct_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Base URLs of replicas A and B: one database, one PgBouncer, two processes."""
    pooled = pgbouncer.url(make_url(direct_database_url).database)

    def replica(name: str) -> AbstractContextManager[tuple[str, subprocess.Popen[str]]]:
        return taskapi_serve(
            Path(tmp_path_factory.mktemp(name)),
            DATABASE_URL=pooled,
            DATABASE_POOLER="transaction",
            JWT_SECRET=SECRET,
            LOG_LEVEL="WARNING",
        )

    with replica("replica-a") as (a, process_a), replica("replica-b") as (b, process_b):
        assert process_a.pid != process_b.pid
        yield a, b


@pytest.fixture
async def replicas(
    replica_urls: tuple[str, str], engine: AsyncEngine, clean_tasks: None
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """HTTP clients of replicas A and B, on an empty database."""
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE idempotency_keys"))
    a_url, b_url = replica_urls
    async with (
        httpx.AsyncClient(base_url=a_url, timeout=10) as a,
        httpx.AsyncClient(base_url=b_url, timeout=10) as b,
    ):
        yield a, b


def keyed(key: str) -> dict[str, str]:
    return {**bearer("alice"), "Idempotency-Key": key}


async def test_a_task_written_on_one_replica_is_read_changed_and_deleted_on_the_other(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient], rows: Rows
) -> None:
    a, b = replicas
    created = await a.post("/api/alice/tasks", json={"title": "on A"}, headers=bearer())
    task = assert_task_response(created, 201, user="alice")
    path = f"/api/alice/tasks/{task['id']}"
    etag_from_a = created.headers["etag"]

    read = await b.get(path, headers=bearer())
    assert assert_task_response(read, 200, user="alice") == task
    assert read.headers["etag"] == etag_from_a
    listed = await b.get("/api/alice/tasks", headers=bearer())
    assert listed.status_code == 200
    assert listed.json() == [task]

    updated = await b.put(
        path, json={"title": "on B"}, headers={**bearer(), "If-Match": etag_from_a}
    )
    assert assert_task_response(updated, 200, user="alice")["version"] == 2
    assert updated.headers["etag"] == '"2"'

    stale = await a.put(
        path, json={"title": "lost update"}, headers={**bearer(), "If-Match": etag_from_a}
    )
    assert_problem(stale, 412, "precondition_failed")
    again = await a.get(path, headers=bearer())
    assert assert_task_response(again, 200, user="alice")["title"] == "on B"

    completed = await b.patch(f"{path}/complete", headers=bearer())
    assert assert_task_response(completed, 200, user="alice")["completed"] is True
    assert (await a.get(path, headers=bearer())).json() == completed.json()

    deleted = await a.delete(path, headers=bearer())
    assert deleted.status_code == 204
    assert_problem(await b.get(path, headers=bearer()), 404, "task_not_found")
    assert await rows.count() == 0


async def test_a_replica_lists_what_the_other_changed_since_its_last_listing(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = replicas
    for title in ("first", "second"):
        await a.post("/api/alice/tasks", json={"title": title}, headers=bearer())
    before = await a.get("/api/alice/tasks", headers=bearer())
    first, second = before.json()

    changed = await b.put(
        f"/api/alice/tasks/{second['id']}",
        json={"title": "second, on B", "tags": ["b"]},
        headers=bearer(),
    )
    assert changed.status_code == 200
    after = await a.get("/api/alice/tasks", headers=bearer())
    assert after.json() == [first, changed.json()]
    assert after.json()[1]["title"] == "second, on B"
    assert after.json()[1]["version"] == 2


async def test_an_idempotency_key_used_on_one_replica_is_replayed_by_the_other(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient], rows: Rows
) -> None:
    a, b = replicas
    body = {"title": "Pay rent", "description": "before the 1st"}
    first = await a.post("/api/alice/tasks", json=body, headers=keyed("across"))
    retry = await b.post("/api/alice/tasks", json=body, headers=keyed("across"))
    assert first.status_code == retry.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    for header in ("location", "etag", "content-type"):
        assert retry.headers[header] == first.headers[header]
    conflict = await b.post("/api/alice/tasks", json={"title": "other"}, headers=keyed("across"))
    assert_problem(conflict, 409, "idempotency_conflict")
    assert await rows.count("alice") == 1


async def test_concurrent_requests_with_one_key_on_both_replicas_create_one_task(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient], rows: Rows
) -> None:
    a, b = replicas
    responses = await asyncio.gather(
        *(
            (a if n % 2 else b).post(
                "/api/alice/tasks", json={"title": "once"}, headers=keyed("race")
            )
            for n in range(12)
        )
    )
    assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 11
    assert await rows.count("alice") == 1


async def test_a_page_cursor_from_one_replica_works_on_the_other(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = replicas
    ids: list[int] = []
    for n in range(7):
        created = await (a, b)[n % 2].post(
            "/api/alice/tasks", json={"title": f"task {n}"}, headers=bearer()
        )
        assert created.status_code == 201
        ids.append(created.json()["id"])

    seen: list[dict[str, Any]] = []
    next_url: str | None = "/api/alice/tasks?limit=2"
    pages = 0
    while next_url is not None:
        response = await (a, b)[pages % 2].get(next_url, headers=bearer())
        assert response.status_code == 200, response.text
        assert response.headers["x-total-count"] == "7"
        seen.extend(response.json())
        link = response.headers.get("link")
        match = NEXT.match(link) if link is not None else None
        assert link is None or match, link
        next_url = match.group(1) if match else None
        pages += 1
        assert pages < 10, "pagination does not end"
    assert pages == 4
    assert [task["id"] for task in seen] == ids


async def test_a_replica_whose_last_save_was_overtaken_by_the_other_loses_nothing(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient], rows: Rows
) -> None:
    # Each replica starts a change from the task as it last saved it; the other's writes make
    # that memory stale, which may cost a retry but never a lost update or a wrong 412/200.
    a, b = replicas
    created = await a.post("/api/alice/tasks", json={"title": "t"}, headers=bearer())
    path = f"/api/alice/tasks/{assert_task_response(created, 201, user='alice')['id']}"
    assert (await a.put(path, json={"title": "by A"}, headers=bearer())).status_code == 200
    by_b = await b.put(path, json={"description": "by B"}, headers=bearer())
    assert assert_task_response(by_b, 200, user="alice")["version"] == 3

    # A remembers version 2; the current one is 3, which the client names.
    again = await a.put(
        path, json={"completed": True}, headers={**bearer(), "If-Match": by_b.headers["etag"]}
    )
    task = assert_task_response(again, 200, user="alice")
    assert (task["title"], task["description"], task["completed"], task["version"]) == (
        "by A",
        "by B",
        True,
        4,
    )
    # B reopens it; A, which remembers it complete, must still complete it again.
    reopened = await b.put(path, json={"completed": False}, headers=bearer())
    assert assert_task_response(reopened, 200, user="alice")["version"] == 5
    completed = await a.patch(f"{path}/complete", headers=bearer())
    assert assert_task_response(completed, 200, user="alice")["completed"] is True
    stored = await rows.get(int(path.rsplit("/", 1)[1]))
    assert stored is not None
    assert (stored["title"], stored["description"], stored["completed"], stored["version"]) == (
        "by A",
        "by B",
        True,
        6,
    )


async def test_a_replica_that_read_a_task_before_the_other_changed_it_loses_nothing(
    replicas: tuple[httpx.AsyncClient, httpx.AsyncClient], rows: Rows
) -> None:
    # A read is remembered as the guess of the next change too; the other replica's write makes
    # it stale, which must not turn into a lost update or a wrong answer to If-Match.
    a, b = replicas
    created = await a.post("/api/alice/tasks", json={"title": "t"}, headers=bearer())
    path = f"/api/alice/tasks/{assert_task_response(created, 201, user='alice')['id']}"
    read = await a.get(path, headers=bearer())
    assert read.headers["etag"] == '"1"'
    by_b = await b.put(path, json={"description": "by B"}, headers=bearer())
    assert by_b.headers["etag"] == '"2"'

    stale = await a.put(
        path, json={"title": "by A"}, headers={**bearer(), "If-Match": read.headers["etag"]}
    )
    assert stale.status_code == 412
    assert stale.headers["etag"] == '"2"'
    edited = await a.put(
        path, json={"title": "by A"}, headers={**bearer(), "If-Match": by_b.headers["etag"]}
    )
    task = assert_task_response(edited, 200, user="alice")
    assert (task["title"], task["description"], task["version"]) == ("by A", "by B", 3)
    stored = await rows.get(int(path.rsplit("/", 1)[1]))
    assert stored is not None
    assert (stored["title"], stored["description"], stored["version"]) == ("by A", "by B", 3)
