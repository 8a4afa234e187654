"""Idempotency-Key on POST through PostgreSQL: per-user keys, races, expiry, keys in flight.

What HTTP shows of a replay, a conflict or an invalid key: tests/unit/http/test_idempotency.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import Database
from adapters.postgres.repository import SqlIdempotencyKeyJanitor
from tests.e2e.conftest import Rows
from tests.e2e.helpers import assert_problem, custom_client
from tests.tokens import bearer

REPLAYED_HEADERS = ("location", "etag", "content-type")


def keyed(key: str, user: str = "alice") -> dict[str, str]:
    return {**bearer(user), "Idempotency-Key": key}


async def key_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (await connection.execute(text("SELECT count(*) FROM idempotency_keys"))).scalar_one()
        )


@pytest.fixture(autouse=True)
async def no_keys(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE idempotency_keys"))


async def test_keys_are_scoped_per_user(client: httpx.AsyncClient, rows: Rows) -> None:
    alice = await client.post("/api/alice/tasks", json={"title": "a"}, headers=keyed("shared"))
    bob = await client.post("/api/bob/tasks", json={"title": "a"}, headers=keyed("shared", "bob"))
    assert alice.status_code == bob.status_code == 201
    assert alice.json()["id"] != bob.json()["id"]
    assert bob.json()["user_id"] == "bob"
    assert await rows.count() == 2


async def test_concurrent_requests_with_one_key_create_one_task(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/api/alice/tasks", json={"title": "once"}, headers=keyed("race"))
            for _ in range(10)
        )
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    assert await rows.count("alice") == 1


async def test_an_expired_key_counts_as_new(
    client: httpx.AsyncClient, rows: Rows, engine: AsyncEngine
) -> None:
    await client.post("/api/alice/tasks", json={"title": "old"}, headers=keyed("k-5"))
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE idempotency_keys SET created_at = created_at - interval '25 hours'")
        )
    again = await client.post("/api/alice/tasks", json={"title": "new"}, headers=keyed("k-5"))
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert await rows.count("alice") == 2


async def test_the_janitor_purges_only_expired_keys(
    client: httpx.AsyncClient, engine: AsyncEngine, database: Database
) -> None:
    await client.post("/api/alice/tasks", json={"title": "old"}, headers=keyed("old"))
    await client.post("/api/alice/tasks", json={"title": "new"}, headers=keyed("new"))
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE idempotency_keys SET created_at = created_at - interval '25 hours'"
                " WHERE key = 'old'"
            )
        )
    purged = await SqlIdempotencyKeyJanitor(database).purge(datetime.now(UTC))
    assert purged == 1
    async with engine.connect() as connection:
        keys = (await connection.execute(text("SELECT key FROM idempotency_keys"))).scalars()
        assert list(keys) == ["new"]


async def test_a_retry_while_the_first_is_in_flight_waits_then_gets_409_in_progress(
    client: httpx.AsyncClient, engine: AsyncEngine, rows: Rows
) -> None:
    # Stand in for a first request still in flight: its key row is written, not committed.
    async with engine.connect() as first:
        transaction = await first.begin()
        await first.execute(
            text(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)"
                " VALUES ('alice', 'in-flight', 'x', now())"
            )
        )
        started = time.monotonic()
        retry = await client.post(
            "/api/alice/tasks", json={"title": "a"}, headers=keyed("in-flight")
        )
        waited = time.monotonic() - started
        await transaction.rollback()
    assert_problem(retry, 409, "idempotency_in_progress")
    assert retry.headers["retry-after"].isdigit()
    assert 1.5 < waited < 10  # it waited for the first request (lock_timeout), then gave up
    assert await rows.count() == 0
    # Once the first request is gone (rolled back), the key is free again.
    again = await client.post("/api/alice/tasks", json={"title": "a"}, headers=keyed("in-flight"))
    assert again.status_code == 201


async def test_a_keyed_creation_queued_behind_the_owners_writes_waits_for_them_not_409(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine, rows: Rows, clean_tasks: None
) -> None:
    # The key's two-second wait is for another request holding the same key. Here nothing holds
    # it; the owner's lock is held (a long write of alice's) for longer than that wait.
    async with (
        custom_client(app_factory, database_statement_timeout=10) as client,
        engine.connect() as writer,
    ):
        transaction = await writer.begin()
        await writer.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('alice', 0))"))
        started = time.monotonic()
        creation = asyncio.create_task(
            client.post("/api/alice/tasks", json={"title": "a"}, headers=keyed("queued"))
        )
        await asyncio.sleep(3)
        assert not creation.done()
        await transaction.rollback()
        response = await creation
        waited = time.monotonic() - started
    assert response.status_code == 201, response.text
    assert waited >= 3
    assert await rows.count("alice") == 1
