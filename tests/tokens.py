"""Real signed JWTs for tests, made with PyJWT: a different library from the one under test."""

from __future__ import annotations

import time
from typing import Any, Final

import jwt

SECRET: Final = "test-secret-that-is-long-enough-for-hs256-and-hs512-0123456789abcdef"
OTHER_SECRET: Final = "another-secret-long-enough-for-hs256-and-hs512-9876543210fedcba9876"


def make_token(
    sub: object = "alice",
    *,
    secret: str = SECRET,
    ttl: int = 3600,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A token for ``sub`` valid for ``ttl`` seconds; a claim passed as ``None`` is left out."""
    now = int(time.time())
    payload: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl, **claims}
    payload = {key: value for key, value in payload.items() if value is not None}
    return jwt.encode(payload, secret, algorithm=algorithm, headers=headers)


def bearer(sub: str = "alice", **kwargs: Any) -> dict[str, str]:
    """An ``Authorization`` header for ``sub``."""
    return {"Authorization": f"Bearer {make_token(sub, **kwargs)}"}
