"""Prometheus metrics of the HTTP layer (recorded by ``RequestEdgeMiddleware``); log sampling."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter as Counter_
from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

UNMATCHED: Final = "<unmatched>"  # keeps label cardinality bounded whatever paths scanners try
_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HttpMetrics:
    """Request counts and latency by route template and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "taskapi_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "taskapi_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "taskapi_http_requests_in_flight",
            "Requests being served now",
            registry=registry,
            multiprocess_mode="livesum",  # with several workers: theirs added up
        )
        self.limited = Counter(
            "taskapi_http_requests_limited",
            "Requests refused by a limit: rate per user or per address, tasks per user",
            ["limit"],
            registry=registry,
        )
        # labels() takes a lock and builds a key each call; the label sets are few and fixed.
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters[(method, route, status)] = self.requests.labels(
                method, route, str(status)
            )
        counter.inc()
        histogram = self._histograms.get((method, route))
        if histogram is None:
            histogram = self._histograms[(method, route)] = self.latency.labels(method, route)
        histogram.observe(seconds)


class SampledLog:
    """At most ``per_second`` lines a second on ``logger`` (0: every line); the rest are counted.

    An operator may bound a flood of refused requests from many addresses (each within its own
    rate limit). What is dropped is reported in one line when the second ends, so the count is
    never lost.
    """

    def __init__(
        self,
        logger: logging.Logger,
        per_second: int = 0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._per_second = per_second
        self._now = now
        self._window_started = -math.inf
        self._written = 0
        self._suppressed: Counter_[str] = Counter_()
        self._report: asyncio.TimerHandle | None = None

    def warning(self, message: str, extra: dict[str, object]) -> None:
        """Write the line, unless this second's share is spent; then count it by ``event``."""
        if not self._per_second:
            self._logger.warning(message, extra=extra)
            return
        now = self._now()
        if now - self._window_started >= 1.0:
            self._window_started, self._written = now, 0
        if self._written < self._per_second:
            self._written += 1
            self._logger.warning(message, extra=extra)
            return
        self._suppressed[str(extra.get("event", message))] += 1
        if self._report is None:
            delay = max(0.0, self._window_started + 1.0 - now)
            self._report = asyncio.get_running_loop().call_later(delay, self.report_suppressed)

    def report_suppressed(self) -> None:
        """One line with how many lines were left out, by event (called when the second ends)."""
        self._report = None
        if self._suppressed:
            counts, self._suppressed = dict(self._suppressed), Counter_()
            self._logger.warning(
                "log lines suppressed",
                extra={"event": "suppressed", "suppressed": counts, "total": sum(counts.values())},
            )
