from __future__ import annotations

import asyncio

from application.readiness import RecentReadiness
from tests.fakes import FakeClock


class CountingProbe:
    def __init__(self) -> None:
        self.ready = True
        self.checks = 0

    async def is_ready(self) -> bool:
        self.checks += 1
        await asyncio.sleep(0.01)  # a check takes a round trip
        return self.ready


async def test_a_flood_of_probes_makes_one_check() -> None:
    inner, clock = CountingProbe(), FakeClock()
    readiness = RecentReadiness(inner, clock)
    answers = await asyncio.gather(*(readiness.is_ready() for _ in range(100)))
    assert answers == [True] * 100
    assert inner.checks == 1


async def test_the_answer_is_at_most_a_second_old() -> None:
    inner, clock = CountingProbe(), FakeClock()
    readiness = RecentReadiness(inner, clock)
    assert await readiness.is_ready() is True
    inner.ready = False
    clock.advance(0.9)
    assert await readiness.is_ready() is True  # still the recent answer
    clock.advance(0.2)
    assert await readiness.is_ready() is False
    assert inner.checks == 2
