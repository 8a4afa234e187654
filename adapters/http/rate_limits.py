"""Token buckets per user and per client address (API.md, "Limits"), held in this process.

A user's requests take from their bucket once authenticated; a request that fails
authentication takes from its address's bucket. An empty bucket is a 429 with ``Retry-After``
and the IETF draft's ``RateLimit-Policy`` and ``RateLimit`` headers. With N replicas a client may
get up to N times the rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_TRACKED: Final = 50_000
"""Buckets kept before full ones (which a fresh bucket equals) are dropped."""


class RateLimited(Exception):
    """The client's bucket is empty."""

    def __init__(self, policy: str, quota: int, window: int, retry_after: int) -> None:
        super().__init__(f"rate limited ({policy})")
        self.policy = policy
        self.headers = {
            "Retry-After": str(retry_after),
            "RateLimit-Policy": f'"{policy}";q={quota};w={window}',
            "RateLimit": f'"{policy}";r=0;t={retry_after}',
        }


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One bucket per key: ``burst`` tokens at most, refilled at ``rate`` a second.

    A rate or a burst of 0 is no limit (the contract's "0 turns it off" names both).
    """

    def __init__(
        self,
        policy: str,
        rate: float,
        burst: int,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._rate = rate
        self._burst = burst
        self._now = now
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> None:
        """Take one token from ``key``'s bucket; raises ``RateLimited`` when there is none."""
        if self._rate <= 0 or self._burst <= 0:
            return
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(self._burst), now)
        else:
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
        if bucket.tokens < 1:
            raise RateLimited(
                self._policy,
                self._burst,
                math.ceil(self._burst / self._rate),
                math.ceil((1 - bucket.tokens) / self._rate),
            )
        bucket.tokens -= 1

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self._rate >= self._burst
        ]
        for key in full:
            del self._buckets[key]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The two sets of buckets: per user (authenticated) and per address (failed authentication)."""

    per_user: TokenBuckets
    per_address: TokenBuckets
