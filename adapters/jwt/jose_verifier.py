"""``JoseTokenVerifier``: HMAC-signed JWTs (HS256 by default) verified with python-jose."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from jose import ExpiredSignatureError, JWTError, jwt

from application.errors import AuthenticationFailed, TokenExpired
from application.ports import Principal
from domain.task import UserId
from domain.text import is_valid_user_id

HMAC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})
MIN_SECRET_BYTES: Final = 32


class VerifierConfigError(ValueError):
    """The verifier cannot be built from this configuration."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtRules:
    """What a token must satisfy besides its signature."""

    algorithms: tuple[str, ...] = ("HS256",)
    audience: str | None = None
    issuer: str | None = None
    leeway_seconds: int = 0
    user_id_claim: str = "sub"


class JoseTokenVerifier:
    """Verifies tokens signed with a shared secret.

    Always passes an explicit algorithm list (python-jose would otherwise trust the token's
    header), requires ``exp``, and requires ``aud``/``iss`` only when they are configured.
    """

    def __init__(self, secret: str, rules: JwtRules) -> None:
        # python-jose 3.5 accepts tokens signed with an empty key: a short secret is refused here,
        # at start-up, so that can never be the configuration.
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise VerifierConfigError(f"the secret must be at least {MIN_SECRET_BYTES} bytes")
        unknown = set(rules.algorithms) - HMAC_ALGORITHMS
        if unknown or not rules.algorithms:
            raise VerifierConfigError(
                f"shared-secret tokens accept only {', '.join(sorted(HMAC_ALGORITHMS))}; "
                f"not {', '.join(sorted(unknown)) or 'an empty list'}"
            )
        self._secret = secret
        self._rules = rules
        self._options: dict[str, Any] = {
            "require_exp": True,
            "verify_aud": rules.audience is not None,
            "require_aud": rules.audience is not None,
            "verify_iss": rules.issuer is not None,
            "require_iss": rules.issuer is not None,
            "verify_sub": False,  # checked below, for the configured claim only
            "verify_jti": False,
            "verify_at_hash": False,
            "leeway": rules.leeway_seconds,
        }

    @property
    def algorithms(self) -> Iterable[str]:
        """The accepted algorithms."""
        return self._rules.algorithms

    async def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=list(self._rules.algorithms),
                audience=self._rules.audience,
                issuer=self._rules.issuer,
                options=self._options,
            )
        except ExpiredSignatureError:
            raise TokenExpired("token has expired") from None
        except JWTError as error:
            raise AuthenticationFailed(_reason(error)) from None
        except Exception:  # noqa: BLE001  # any parse failure of hostile input is a bad token
            raise AuthenticationFailed("malformed token") from None
        subject = claims.get(self._rules.user_id_claim)
        if not isinstance(subject, str) or not is_valid_user_id(subject):
            raise AuthenticationFailed(
                f"claim {self._rules.user_id_claim!r} is not a valid user id"
            )
        # Verified above: exp is present and numeric.
        expires_at = float(claims["exp"]) + self._rules.leeway_seconds
        return Principal(user_id=UserId(subject), expires_at=expires_at)


def _reason(error: JWTError) -> str:
    """A short reason to log; python-jose's messages hold no token material."""
    text = str(error) or type(error).__name__
    return text[:200]
