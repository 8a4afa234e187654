"""What every verifier checks besides the signature, and how it turns claims into a principal."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeGuard

from application.errors import AuthenticationFailed, TokenExpired
from application.ports import Principal
from domain.task import UserId
from domain.text import is_valid_user_id

ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
"""What a JWKS verifier may accept: never HS* (a public key must not become an HMAC secret)."""

MAX_NUMERIC_DATE: Final = 253_402_300_799
"""9999-12-31T23:59:59Z: a later ``exp`` is no honest token's."""

DEFAULT_JWKS_ALGORITHMS: Final = ("EdDSA", "ES256", "RS256")
"""Better Auth's default (EdDSA) and its two common alternatives."""


class VerifierConfigError(ValueError):
    """A verifier cannot be built from this configuration."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtRules:
    """What a token must satisfy besides its signature."""

    algorithms: tuple[str, ...] = ("HS256",)
    audience: str | None = None
    issuer: str | None = None
    leeway_seconds: int = 0
    user_id_claim: str = "sub"

    def principal(self, claims: Mapping[str, object]) -> Principal:
        """The caller named by verified ``claims``.

        Raises ``AuthenticationFailed`` when the user id claim is not a usable user id, ``exp``
        or a configured audience's ``aud`` is missing, or ``exp`` is not a NumericDate (RFC 7519:
        a JSON number; python-jose also lets a string of digits through, and a number too large
        for a float would overflow).
        """
        subject = self.subject_of(claims)
        if subject is None:
            raise AuthenticationFailed(f"claim {self.user_id_claim!r} is not a valid user id")
        for required in ("exp", "aud") if self.audience is not None else ("exp",):
            if required not in claims:
                raise AuthenticationFailed(f"claim {required!r} is missing", subject=subject)
        expires = claims.get("exp")
        if not is_numeric_date(expires):
            raise AuthenticationFailed("claim 'exp' is not a NumericDate", subject=subject)
        return Principal(user_id=UserId(subject), expires_at=float(expires) + self.leeway_seconds)

    def subject_of(self, claims: Mapping[str, object]) -> str | None:
        """The user that verified ``claims`` name, if it is a usable user id.

        Only ever read from a token whose signature held: a refusal's log names the user then,
        never one a forger wrote.
        """
        subject = claims.get(self.user_id_claim)
        return subject if isinstance(subject, str) and is_valid_user_id(subject) else None

    def claims_failure(self, reason: str, claims: Mapping[str, object]) -> AuthenticationFailed:
        """A genuine token refused for a claim (``nbf``, ``aud``, ``iss``, ...), its user known."""
        return AuthenticationFailed(reason, subject=self.subject_of(claims))

    def expiry_failure(self, claims: Mapping[str, object]) -> AuthenticationFailed:
        """What a library's "expired" means for verified ``claims``: ``exp: true`` reads as 1."""
        if is_numeric_date(claims.get("exp")):
            return TokenExpired("token has expired", subject=self.subject_of(claims))
        return self.claims_failure("claim 'exp' is not a NumericDate", claims)


def is_numeric_date(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is RFC 7519's NumericDate: a JSON number in range, not a boolean."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and 0 <= value <= MAX_NUMERIC_DATE
    )


_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def check_form(token: str, header: Mapping[str, object]) -> None:
    """Refuse what the libraries let through: only the compact form, no critical extensions.

    RFC 7515: a JWS in compact form is three unpadded base64url segments (python-jose accepts
    a signature with ``==`` appended), and a ``crit`` header names extensions the recipient must
    understand or refuse; this service understands none. Raises ``AuthenticationFailed``.
    """
    if not _COMPACT_JWS.fullmatch(token):
        raise AuthenticationFailed("malformed token")
    if "crit" in header:
        raise AuthenticationFailed("token has critical header extensions")


def failure_reason(error: Exception) -> str:
    """A short reason to log; the JWT libraries' messages hold no token material."""
    return (str(error) or type(error).__name__)[:200]
