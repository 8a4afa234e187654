"""The event stream's comment line comes after HEARTBEAT s without a line, however often it wakes.

A stream that polls wakes after each change for several polls that bring nothing; those wakes
must not put the comment line off (the contract wants a line at least every 15 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from fastapi.sse import ServerSentEvent

from adapters.http import events
from adapters.http.cursor import SyncTokenCodec
from application.events import ChangeHub, StreamPlace
from application.tasks import ListChanges
from domain.task import UserId
from tests.fakes import FakeClock, FakeTaskRepository

HEARTBEAT = 0.3


async def test_wakes_that_bring_nothing_do_not_put_off_the_comment_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events, "HEARTBEAT", HEARTBEAT)
    changes = ListChanges(FakeTaskRepository(), FakeClock())
    owner = UserId("alice")
    place = StreamPlace(asyncio.Event())
    stream = events.Stream(owner, place, await changes.execute(owner, since=None), None)
    lines = events.stream_events(stream, ChangeHub(), SyncTokenCodec([b"k" * 32]), changes)

    async def wake_often() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT / 6)
            place.wake.set()

    waker = asyncio.create_task(wake_often())
    try:
        started = time.monotonic()
        for _ in range(3):
            line = await asyncio.wait_for(anext(lines), timeout=HEARTBEAT * 5)
            assert isinstance(line, ServerSentEvent)
            assert line.comment == "ping"
            waited, started = time.monotonic() - started, time.monotonic()
            assert HEARTBEAT * 0.9 <= waited < HEARTBEAT * 2
    finally:
        waker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waker
        await lines.aclose()  # type: ignore[attr-defined]  # an async generator
