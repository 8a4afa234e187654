"""`GET /api/{user_id}/tasks/changes` over HTTP, on PostgreSQL (and through PgBouncer)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.http.cursor import SyncTokenCodec
from adapters.http.schemas import ChangesOut
from adapters.postgres.accounts import erase_user
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.restore import expire_sync_tokens
from tests.e2e.helpers import TIMESTAMP, assert_problem, assert_task, create, media_type
from tests.tokens import bearer

CHANGES = "/api/alice/tasks/changes"


async def changes(
    client: httpx.AsyncClient, since: str | None = None, user: str = "alice", **query: Any
) -> dict[str, Any]:
    params = {**query, **({"since": since} if since is not None else {})}
    response = await client.get(f"/api/{user}/tasks/changes", params=params, headers=bearer(user))
    assert response.status_code == 200, response.text
    assert media_type(response) == "application/json"
    body: dict[str, Any] = response.json()
    ChangesOut.model_validate(body)  # the documented schema
    assert set(body) == {"changes", "next", "has_more"}
    for change in body["changes"]:
        if change["op"] == "upsert":
            assert set(change) == {"op", "task"}
            assert_task(change["task"], user=user)
        else:
            assert set(change) == {"op", "id", "deleted_at"}
            assert TIMESTAMP.fullmatch(change["deleted_at"])
    return body


def ops(body: dict[str, Any]) -> list[tuple[str, int, str | None]]:
    return [
        ("upsert", c["task"]["id"], c["task"]["title"])
        if c["op"] == "upsert"
        else ("delete", c["id"], None)
        for c in body["changes"]
    ]


async def test_a_second_device_follows_every_change_made_through_the_api(
    client: httpx.AsyncClient,
) -> None:
    a = await create(client, title="a")
    b = await create(client, title="b")
    await create(client, user="bob", title="bob's")
    first = await changes(client)
    assert ops(first) == [("upsert", a["id"], "a"), ("upsert", b["id"], "b")]
    assert first["has_more"] is False

    c = await create(client, title="c")
    renamed = await client.put(
        f"/api/alice/tasks/{a['id']}", json={"title": "a2"}, headers=bearer()
    )
    assert renamed.status_code == 200
    done = await client.patch(f"/api/alice/tasks/{b['id']}/complete", headers=bearer())
    assert done.status_code == 200
    gone = await client.delete(f"/api/alice/tasks/{c['id']}", headers=bearer())
    assert gone.status_code == 204

    later = await changes(client, first["next"])

    assert ops(later) == [
        ("upsert", a["id"], "a2"),
        ("upsert", b["id"], "b"),
        ("delete", c["id"], None),
    ]
    assert later["changes"][1]["task"] == done.json()  # the task as the API shows it
    assert later["changes"][1]["task"]["completed"] is True
    assert (await changes(client, later["next"]))["changes"] == []


async def test_pages_follow_next_until_has_more_is_false(client: httpx.AsyncClient) -> None:
    ids = [(await create(client, title=f"t{n}"))["id"] for n in range(5)]
    seen: list[int] = []
    since = None
    for _ in range(10):
        body = await changes(client, since, limit=2)
        assert len(body["changes"]) <= 2
        seen += [c["task"]["id"] for c in body["changes"]]
        since = body["next"]
        if not body["has_more"]:
            break
    assert seen == ids


async def test_a_token_older_than_30_days_is_410_and_starting_over_works(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await create(client, title="kept")
    tokens: SyncTokenCodec = app.state.container.sync_tokens()
    position = tokens.decode((await changes(client))["next"], "alice")
    month_old = replace(position, as_of=position.as_of - timedelta(days=30, seconds=5))

    response = await client.get(
        CHANGES, params={"since": tokens.encode("alice", month_old)}, headers=bearer()
    )

    body = assert_problem(response, 410, "sync_token_expired")
    assert "without since" in body["detail"]
    fresh = await changes(client)  # starting over works
    assert [c["task"]["title"] for c in fresh["changes"]] == ["kept"]


async def test_after_the_user_is_erased_an_old_token_is_410_not_nothing_changed(
    client: httpx.AsyncClient, direct_database_url: str
) -> None:
    # What `taskapi delete-user` runs: the tasks and their deletions go, so a device still
    # holding a token cannot be told of them; it must start over, not keep the tasks for good.
    gone = await create(client, title="gone")
    await create(client, title="also gone")
    await client.delete(f"/api/alice/tasks/{gone['id']}", headers=bearer())
    await create(client, user="bob", title="bob's")
    token = (await changes(client))["next"]
    bobs = (await changes(client, user="bob"))["next"]

    await erase_user(DatabaseOptions.from_url(direct_database_url), "alice")

    response = await client.get(CHANGES, params={"since": token}, headers=bearer())
    assert_problem(response, 410, "sync_token_expired")
    restart = await changes(client)  # starting over: nothing left
    assert restart["changes"] == []
    assert (await changes(client, bobs, user="bob"))["changes"] == []  # bob's token still works
    # Erasing again when nothing is left moves nothing: the token from the restart stays good.
    await erase_user(DatabaseOptions.from_url(direct_database_url), "alice")
    assert (await changes(client, restart["next"]))["changes"] == []
    # Alice comes back: the old token stays refused, however far her feed moves on.
    await create(client, title="new")
    response = await client.get(CHANGES, params={"since": token}, headers=bearer())
    assert_problem(response, 410, "sync_token_expired")
    later = await changes(client, restart["next"])
    assert [c["task"]["title"] for c in later["changes"]] == ["new"]
    assert [c["task"]["title"] for c in (await changes(client))["changes"]] == ["new"]


async def test_an_erased_user_whose_tasks_predate_the_feed_gets_410_too(
    client: httpx.AsyncClient, engine: AsyncEngine, direct_database_url: str
) -> None:
    # Tasks stored before the feed existed (or loaded with triggers off) hold place 0, as does a
    # token that read them; the erasure still lies after it.
    await create(client, title="old")
    async with engine.begin() as connection:
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        await connection.execute(text("UPDATE tasks SET change_seq = 0"))
    token = (await changes(client))["next"]
    assert (await changes(client, token))["changes"] == []

    await erase_user(DatabaseOptions.from_url(direct_database_url), "alice")

    response = await client.get(CHANGES, params={"since": token}, headers=bearer())
    assert_problem(response, 410, "sync_token_expired")


RESTORED = ("tasks", "task_tombstones", "task_counts")


@contextlib.asynccontextmanager
async def restore_point(engine: AsyncEngine) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Yield a function that puts the feed's tables and sequences back as they are now.

    What a point-in-time restore leaves of them: the rows as they were, and the sequences rewound
    (places and task ids handed out after the restore point are handed out again).
    """
    async with engine.begin() as connection:
        for table in RESTORED:
            await connection.execute(text(f"CREATE TABLE restore_{table} AS TABLE {table}"))
        places = await connection.scalar(text("SELECT last_value FROM task_change_seq"))
        ids = await connection.scalar(text("SELECT max(id) FROM tasks"))

    async def restore() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("SET LOCAL session_replication_role = replica"))
            for table in RESTORED:
                await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608  # ours
                await connection.execute(
                    text(f"INSERT INTO {table} OVERRIDING SYSTEM VALUE TABLE restore_{table}")
                )
            await connection.execute(text(f"SELECT setval('task_change_seq', {places})"))
            await connection.execute(
                text(f"SELECT setval(pg_get_serial_sequence('tasks', 'id'), {ids})")
            )

    try:
        yield restore
    finally:
        async with engine.begin() as connection:
            for table in RESTORED:
                await connection.execute(text(f"DROP TABLE restore_{table}"))


async def test_after_a_restore_to_an_earlier_point_expired_tokens_are_410_not_a_silent_gap(
    client: httpx.AsyncClient, engine: AsyncEngine, direct_database_url: str
) -> None:
    kept = await create(client, title="kept")
    await create(client, user="bob", title="bob's")
    async with restore_point(engine) as restore:
        before = (await changes(client))["next"]
        bobs = (await changes(client, user="bob"))["next"]
        lost = await create(client, title="lost")  # after the restore point: the restore loses it
        await client.delete(f"/api/alice/tasks/{kept['id']}", headers=bearer())
        after = await changes(client, before)
        assert ops(after) == [("upsert", lost["id"], "lost"), ("delete", kept["id"], None)]

        await restore()
        # The gap this closes: the device that saw the lost stretch hears "nothing changed", so
        # it would keep "lost" for good and never get "kept" back.
        assert (await changes(client, after["next"]))["changes"] == []

        await expire_sync_tokens(DatabaseOptions.from_url(direct_database_url))

    for user, token in (("alice", after["next"]), ("alice", before), ("bob", bobs)):
        response = await client.get(
            f"/api/{user}/tasks/changes", params={"since": token}, headers=bearer(user)
        )
        assert_problem(response, 410, "sync_token_expired")
    again = await changes(client)  # starting over: the tasks as restored
    assert ops(again) == [("upsert", kept["id"], "kept")]
    new = await create(client, title="after the restore")
    # Nor is the lost task's id handed out again: an offline device's edit of it, at the version
    # it knew, cannot land on a new task.
    edit = {**bearer(), "If-Match": f'"{lost["version"]}"'}
    stale = await client.put(f"/api/alice/tasks/{lost['id']}", json={"title": "x"}, headers=edit)
    assert_problem(stale, 404, "task_not_found")
    assert ops(await changes(client, again["next"])) == [("upsert", new["id"], "after the restore")]
    assert [c["task"]["title"] for c in (await changes(client, user="bob"))["changes"]] == ["bob's"]


@pytest.mark.parametrize(
    "query",
    [
        {"since": "not-a-token"},
        {"since": "A" * 5000},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "many"},
        {"limit": "+5"},
    ],
)
async def test_bad_parameters_are_400_naming_them(
    client: httpx.AsyncClient, query: dict[str, str]
) -> None:
    response = await client.get(CHANGES, params=query, headers=bearer())
    body = assert_problem(response, 400)
    assert [e["field"] for e in body["errors"]] == list(query)


async def test_a_token_is_bound_to_its_user_and_is_not_a_page_cursor(
    client: httpx.AsyncClient,
) -> None:
    await create(client, user="bob", title="bob's")
    bobs = (await changes(client, user="bob"))["next"]
    response = await client.get(CHANGES, params={"since": bobs}, headers=bearer())
    assert assert_problem(response, 400)["errors"][0]["field"] == "since"
    for n in range(3):
        await create(client, title=f"t{n}")
    listing = await client.get("/api/alice/tasks?limit=1", headers=bearer())
    cursor = listing.headers["link"].split("cursor=")[1].split(">")[0]
    response = await client.get(CHANGES, params={"since": cursor}, headers=bearer())
    assert_problem(response, 400)


async def test_the_feed_is_guarded_like_every_endpoint(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(CHANGES), 401)
    assert_problem(await client.get(CHANGES, headers=bearer("bob")), 403)
