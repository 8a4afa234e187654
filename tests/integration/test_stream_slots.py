"""Event streams' places on PostgreSQL: one count for every replica, leases that lapse."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import Database
from adapters.postgres.streams import SqlStreamSlots
from domain.task import UserId

pytestmark = pytest.mark.usefixtures("clean_tasks")

ALICE = UserId("alice")
BOB = UserId("bob")


@pytest.fixture
def slots(database: Database) -> SqlStreamSlots:
    return SqlStreamSlots(database)


async def _take(slots: SqlStreamSlots, owner: UserId, stream: UUID | None = None) -> bool:
    return await slots.take(owner, stream or uuid4(), most=3, lease_seconds=30)


async def _leases(engine: AsyncEngine) -> dict[tuple[str, UUID], float]:
    """Each lease, by owner and stream: its seconds left (read as the superuser: none hidden)."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT stream_id, user_id, extract(epoch FROM until - now())::float"
                " FROM task_streams"
            )
        )
        return {(row[1], row[0]): row[2] for row in rows}


async def test_a_user_holds_at_most_the_limit_and_a_place_given_back_is_free(
    slots: SqlStreamSlots, engine: AsyncEngine
) -> None:
    streams = [uuid4() for _ in range(3)]
    assert [await _take(slots, ALICE, stream) for stream in streams] == [True, True, True]
    assert await _take(slots, ALICE) is False
    assert await _take(slots, BOB) is True  # another user's places are their own
    await slots.give_back(ALICE, streams[0])
    assert await _take(slots, ALICE) is True
    leases = await _leases(engine)
    assert sorted(owner for owner, _ in leases) == ["alice"] * 3 + ["bob"]
    assert (ALICE, streams[0]) not in leases
    assert all(25 < left <= 30 for left in leases.values())


async def test_a_lapsed_lease_holds_no_place_and_is_dropped(
    slots: SqlStreamSlots, engine: AsyncEngine
) -> None:
    lapsed = uuid4()
    for stream in (lapsed, uuid4(), uuid4()):
        assert await _take(slots, ALICE, stream)
    async with engine.begin() as connection:  # the replica holding it died 30 s ago
        await connection.execute(
            text(
                "UPDATE task_streams SET until = now() - interval '1 second' WHERE stream_id = :s"
            ),
            {"s": lapsed},
        )
    assert await _take(slots, ALICE) is True
    assert (ALICE, lapsed) not in await _leases(engine)
    assert await _take(slots, ALICE) is False


async def test_keeping_renews_the_leases_and_reports_places_gone_without_taking_them(
    slots: SqlStreamSlots, engine: AsyncEngine
) -> None:
    alices, bobs = uuid4(), uuid4()
    assert await slots.take(ALICE, alices, most=3, lease_seconds=5)
    assert await slots.take(BOB, bobs, most=3, lease_seconds=5)
    async with engine.begin() as connection:  # bob's lapsed, and an open took it over
        await connection.execute(text("DELETE FROM task_streams WHERE user_id = 'bob'"))
    gone = await slots.keep([(ALICE, alices), (BOB, bobs)], lease_seconds=60)
    assert gone == [bobs]
    leases = await _leases(engine)
    assert set(leases) == {(ALICE, alices)}  # not taken again: the limit was not checked
    assert 55 < leases[ALICE, alices] <= 60
    assert await slots.keep([], lease_seconds=60) == []  # nothing open: nothing to do


async def test_racing_opens_take_exactly_the_places_there_are(slots: SqlStreamSlots) -> None:
    taken = await asyncio.gather(*(_take(slots, ALICE) for _ in range(12)))
    assert sorted(taken) == [False] * 9 + [True] * 3


async def test_a_place_is_given_back_only_by_its_owner(
    slots: SqlStreamSlots, engine: AsyncEngine
) -> None:
    stream = uuid4()
    assert await _take(slots, ALICE, stream)
    await slots.give_back(BOB, stream)  # the owner filter: not bob's to free
    assert set(await _leases(engine)) == {(ALICE, stream)}
