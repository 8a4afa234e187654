"""Authentication and authorisation of a request, before any use case runs."""

from __future__ import annotations

from application.errors import AuthenticationFailed
from application.ports import Principal, TokenVerifier
from domain.task import UserId, ensure_owner

MAX_TOKEN_LENGTH = 8192
"""Longer bearer tokens are refused unread: no honest JWT of ours comes near it."""


class Authenticate:
    """Turn a bearer token into the caller it proves."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def execute(self, token: str | None) -> Principal:
        """Return the principal; raises ``AuthenticationFailed`` for a missing or bad token."""
        if not token:
            raise AuthenticationFailed("missing bearer token")
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("token too long")
        return await self._verifier.verify(token)


def authorise_owner(principal: Principal, addressed_user: str) -> UserId:
    """Return the owner to act for; raises ``AccessDenied`` unless it is the caller."""
    return ensure_owner(principal.user_id, addressed_user)
