"""Errors raised by use cases and port implementations that are not domain rule violations.

``ApplicationError``
    Base class.
``AuthenticationFailed``
    A bearer token was missing or could not be trusted; ``reason`` is a short, loggable
    explanation that never contains the token. ``TokenExpired`` is the case of a token that was
    valid but is past its ``exp``; ``MissingToken`` the case of a request that carries none.
``StorageUnavailable``
    The task store cannot be reached or timed out. Nothing was written (each write is one
    transaction); the caller may retry later.
``WriteContention``
    A change kept losing the race to other writers of the same task and gave up; nothing of it
    was written, and a retry later may pass.
``IdempotencyConflict``
    An idempotency key was reused with a different request.
``IdempotencyInProgress``
    An idempotency key is held by a request still in flight, and waiting for it timed out.
"""

from __future__ import annotations


class ApplicationError(Exception):
    """Base class of the application layer's errors."""


class AuthenticationFailed(ApplicationError):
    """The request does not prove who the caller is."""

    def __init__(self, reason: str, *, subject: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.subject = subject


class MissingToken(AuthenticationFailed):
    """The request carries no token at all."""

    def __init__(self) -> None:
        super().__init__("missing bearer token")


class TokenExpired(AuthenticationFailed):
    """The token was genuine but has expired."""


class StorageUnavailable(ApplicationError):
    """The task store did not answer in time; nothing was written."""


class WriteContention(ApplicationError):
    """Other writers kept changing the task while this change was being saved."""


class IdempotencyConflict(ApplicationError):
    """The idempotency key was first used with a different request."""


class IdempotencyInProgress(ApplicationError):
    """The first request with this idempotency key has not finished yet."""
