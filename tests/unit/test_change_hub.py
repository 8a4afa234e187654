"""``ChangeHub`` and ``EventStreams``: who is woken, how many streams a user may hold, leases."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from uuid import UUID

import pytest

from application.events import ChangeHub, EventStreams, TooManyStreams
from domain.task import UserId
from tests.fakes import FakeStreamSlots
from tests.sse import until

ALICE = UserId("alice")
BOB = UserId("bob")


@contextlib.asynccontextmanager
async def keeping(streams: EventStreams, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """``streams`` renewing its leases every 10 ms for the block."""
    monkeypatch.setattr("application.events.KEEP_SECONDS", 0.01)
    keeper = asyncio.create_task(streams.keep_forever())
    try:
        yield
    finally:
        keeper.cancel()


async def test_a_notification_wakes_only_its_owners_streams() -> None:
    hub = ChangeHub()
    with (
        hub.subscribe("alice") as alice,
        hub.subscribe("alice") as again,
        hub.subscribe("bob") as bob,
    ):
        hub.notify("alice")
        assert alice.is_set()
        assert again.is_set()
        assert not bob.is_set()
        hub.notify_all()
        assert bob.is_set()
    assert hub.streams == 0


async def test_a_user_holds_at_most_the_limit_and_a_closed_stream_frees_its_place() -> None:
    slots = FakeStreamSlots()
    hub = ChangeHub()
    # Two processes, one count: what one holds, the other cannot take.
    here, there = EventStreams(hub, slots, most=2), EventStreams(ChangeHub(), slots, most=2)
    async with here.open(ALICE):
        async with there.open(ALICE):
            with pytest.raises(TooManyStreams):
                async with here.open(ALICE):
                    pass
            assert hub.streams == 1
        async with there.open(ALICE), here.open(BOB):
            assert sorted(slots.held.values()) == ["alice", "alice", "bob"]
    assert slots.held == {}
    assert hub.streams == 0


async def test_a_stream_that_fails_or_is_cancelled_gives_its_place_back() -> None:
    slots = FakeStreamSlots()
    streams = EventStreams(ChangeHub(), slots, most=1)
    with pytest.raises(RuntimeError):
        async with streams.open(ALICE):
            raise RuntimeError
    assert slots.held == {}

    opened = asyncio.Event()

    async def follow() -> None:
        async with streams.open(ALICE) as place:
            opened.set()
            await place.wake.wait()

    following = asyncio.create_task(follow())
    await opened.wait()
    following.cancel()
    await asyncio.sleep(0)  # now giving back, one round trip in
    following.cancel()  # as a cancelled scope cancels again whatever the stream awaits
    with pytest.raises(asyncio.CancelledError):
        await following
    await until(lambda: not slots.held, 1, "the place given back")


async def test_places_not_given_back_during_an_outage_are_given_back_when_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slots = FakeStreamSlots()
    streams = EventStreams(ChangeHub(), slots, most=2)
    slots.unreachable = True  # the outage ends both streams; their places stay taken
    async with streams.open(ALICE), streams.open(BOB):
        pass
    slots.unreachable = False
    async with streams.open(ALICE), streams.open(ALICE):  # her owed place is freed first
        assert sorted(slots.held.values()) == ["alice", "alice", "bob"]
    async with keeping(streams, monkeypatch):  # no stream open: bob's still goes
        await until(lambda: not slots.held, 1, "bob's place given back")


async def test_a_stream_whose_place_is_gone_is_told_to_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slots = FakeStreamSlots()
    streams = EventStreams(ChangeHub(), slots)
    async with (
        keeping(streams, monkeypatch),
        streams.open(ALICE) as kept,
        streams.open(ALICE) as taken_over,
    ):
        stream = list(slots.held)[1]  # the second taken: taken_over's
        del slots.held[stream]  # its lease lapsed, and another open took the place
        await asyncio.wait_for(taken_over.wake.wait(), 1)
        assert taken_over.lost
        slots.held[stream] = ALICE  # so that the stream's end gives something back
        assert not kept.lost
        assert not kept.wake.is_set()


async def test_the_leases_of_open_streams_are_kept_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slots = FakeStreamSlots()
    kept_once = asyncio.Event()
    keep = slots.keep

    async def keep_and_say(
        streams: Sequence[tuple[UserId, UUID]], *, lease_seconds: int
    ) -> list[UUID]:
        gone = await keep(streams, lease_seconds=lease_seconds)
        kept_once.set()
        return gone

    slots.keep = keep_and_say  # type: ignore[method-assign]
    streams = EventStreams(ChangeHub(), slots)
    async with keeping(streams, monkeypatch):
        async with streams.open(ALICE), streams.open(BOB):
            await asyncio.wait_for(kept_once.wait(), 1)
            assert set(slots.kept[0]) == {(owner, stream) for stream, owner in slots.held.items()}
        kept = len(slots.kept)
        await asyncio.sleep(0.05)  # none open: nothing more to keep
    assert len(slots.kept) == kept


async def test_closing_wakes_every_stream_and_says_so() -> None:
    hub = ChangeHub()
    with hub.subscribe("alice") as alice:
        hub.close()
        assert alice.is_set()
        assert hub.closing


async def test_the_source_waits_until_a_stream_is_open() -> None:
    hub = ChangeHub()
    waiting = asyncio.create_task(hub.wait_for_streams())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    with hub.subscribe("alice"):
        await asyncio.wait_for(waiting, 1)


async def test_a_users_first_stream_ends_the_wait_for_new_owners_and_a_second_does_not() -> None:
    hub = ChangeHub()
    waiting = asyncio.create_task(hub.wait_for_new_owners(60))
    await asyncio.sleep(0)
    with hub.subscribe("alice"):
        await asyncio.wait_for(waiting, 1)
        again = asyncio.create_task(hub.wait_for_new_owners(60))
        with hub.subscribe("alice"):  # not a new owner
            await asyncio.sleep(0.05)
            assert not again.done()
        with hub.subscribe("bob"):
            await asyncio.wait_for(again, 1)
    await hub.wait_for_new_owners(0.01)  # nothing new: returns after its time
