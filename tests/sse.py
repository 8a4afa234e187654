"""A small Server-Sent Events reader for the tests: what a browser's fetch-based client does."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.tokens import bearer


@dataclass
class Event:
    """One event as the stream framed it (``comment`` for a ``:`` line alone)."""

    event: str | None = None
    id: str | None = None
    data: str | None = None
    comment: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:  # whatever the event carried
        assert self.data is not None
        return json.loads(self.data)


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of an open ``text/event-stream`` response, as they arrive."""
    current = Event()
    async for line in response.aiter_lines():
        if not line:
            if current.event or current.data or current.id or current.comment:
                current.at = time.monotonic()
                yield current
            current = Event()
        elif line.startswith(":"):
            current.comment = line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data" and current.data is not None:
                current.data = f"{current.data}\n{value}"
            elif name in {"event", "id", "data"}:
                setattr(current, name, value)


class Follower:
    """A client keeping a local copy through the stream, reconnecting with ``Last-Event-ID``.

    It behaves as ``EventSource`` does: when the stream ends or breaks, it waits a moment and
    opens it again from the last id it received.
    """

    def __init__(
        self, base: str, user: str = "alice", token_headers: dict[str, str] | None = None
    ) -> None:
        self.base = base
        self.user = user
        self.headers = token_headers or bearer(user)
        self.tasks: dict[int, dict[str, Any]] = {}
        self.last_id: str | None = None
        self.received: list[Event] = []
        self.connections = 0
        self.changed = asyncio.Event()

    def apply(self, event: Event) -> None:
        change = event.json
        if change["op"] == "upsert":
            self.tasks[change["task"]["id"]] = change["task"]
        else:
            self.tasks.pop(change["id"], None)
        self.last_id = event.id
        self.received.append(event)
        self.changed.set()

    async def run(self) -> None:
        """Follow until cancelled."""
        timeout = httpx.Timeout(10, read=30)
        async with httpx.AsyncClient(base_url=self.base, timeout=timeout) as http:
            while True:
                headers = dict(self.headers)
                if self.last_id:
                    headers["Last-Event-ID"] = self.last_id
                try:
                    async with http.stream("GET", f"/api/{self.user}/events", headers=headers) as r:
                        if r.status_code == httpx.codes.OK:
                            self.connections += 1
                            async for event in events(r):
                                if event.event == "change":
                                    self.apply(event)
                        else:
                            await r.aread()
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.3)


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Wait for ``condition()`` to hold, checking every 10 ms."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
