"""``ChangeHub``: who is woken, how many streams a user may hold, and shutting down."""

from __future__ import annotations

import asyncio

import pytest

from application.events import ChangeHub, TooManyStreams


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
    hub = ChangeHub(max_streams_per_user=2)
    with hub.subscribe("alice"):
        with hub.subscribe("alice"), pytest.raises(TooManyStreams), hub.subscribe("alice"):
            pass
        with hub.subscribe("alice"), hub.subscribe("bob"):
            assert hub.streams == 3


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
