"""Authentication and authorisation of a request, before any use case runs."""

from __future__ import annotations

from typing import Final

from application.errors import AuthenticationFailed, MissingToken
from application.ports import Clock, Principal, TokenVerifier
from domain.task import UserId, ensure_owner

MAX_TOKEN_LENGTH = 8192
"""Longer bearer tokens are refused unread: no honest JWT of ours comes near it."""


DEFAULT_CACHE_ENTRIES: Final = 10_000


class CachedTokenVerifier:
    """A ``TokenVerifier`` that remembers verified tokens until they expire.

    A browser sends the same token with every request for its whole lifetime; checking its
    signature once instead of every time is most of the cost of authentication. Only successes
    are kept, and only while ``expires_at`` is in the future, so an expired token is refused
    exactly as without the cache. At most ``max_entries`` tokens are kept (the oldest go first).
    """

    def __init__(
        self, inner: TokenVerifier, clock: Clock, max_entries: int = DEFAULT_CACHE_ENTRIES
    ) -> None:
        self._inner = inner
        self._clock = clock
        self._max_entries = max_entries
        self._verified: dict[str, Principal] = {}

    async def verify(self, token: str) -> Principal:
        """Return the cached principal while it holds, else verify with the inner verifier."""
        now = self._clock.now().timestamp()
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at is not None and now < known.expires_at:
                return known
            del self._verified[token]
        principal = await self._inner.verify(token)
        if principal.expires_at is not None and now < principal.expires_at:
            if len(self._verified) >= self._max_entries:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = principal
        return principal


class Authenticate:
    """Turn a bearer token into the caller it proves."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def execute(self, token: str | None) -> Principal:
        """Return the principal; raises ``AuthenticationFailed`` for a missing or bad token."""
        if not token:
            raise MissingToken()
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("token too long")
        return await self._verifier.verify(token)


def authorise_owner(principal: Principal, addressed_user: str) -> UserId:
    """Return the owner to act for; raises ``AccessDenied`` unless it is the caller."""
    return ensure_owner(principal.user_id, addressed_user)
