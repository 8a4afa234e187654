"""``JoseTokenVerifier``: HMAC-signed JWTs (HS256 by default) verified with python-jose."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from jose import ExpiredSignatureError, JWTError, jws, jwt
from jose.exceptions import JWTClaimsError

from adapters.jwt.rules import (
    JwtRules,
    VerifierConfigError,
    check_form,
    failure_reason,
)
from application.errors import AuthenticationFailed
from application.ports import Principal

HMAC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})
MIN_SECRET_BYTES: Final = 32


class JoseTokenVerifier:
    """Verifies tokens signed with a shared secret (or one of the secrets it replaced).

    Always passes an explicit algorithm list (python-jose would otherwise trust the token's
    header); ``exp`` is required, and ``aud``/``iss`` only when they are configured.
    """

    def __init__(
        self, secret: str, rules: JwtRules, *, previous_secrets: tuple[str, ...] = ()
    ) -> None:
        # python-jose 3.5 accepts tokens signed with an empty key: a short secret is refused here,
        # at start-up, so that can never be the configuration.
        if any(len(key.encode()) < MIN_SECRET_BYTES for key in (secret, *previous_secrets)):
            raise VerifierConfigError(f"the secret must be at least {MIN_SECRET_BYTES} bytes")
        unknown = set(rules.algorithms) - HMAC_ALGORITHMS
        if unknown or not rules.algorithms:
            raise VerifierConfigError(
                f"shared-secret tokens accept only {', '.join(sorted(HMAC_ALGORITHMS))}; "
                f"not {', '.join(sorted(unknown)) or 'an empty list'}"
            )
        # Earlier secrets still verify (never sign), so a rotation logs nobody out; python-jose
        # accepts a signature made with any key of the list.
        self._keys: str | list[str] = [secret, *previous_secrets] if previous_secrets else secret
        self._rules = rules
        # A missing exp or aud is refused by ``JwtRules.principal``: python-jose reports one with
        # the error class of a bad signature, and a genuine token's refusal should name its user.
        self._options: dict[str, Any] = {
            "require_exp": False,
            "verify_aud": rules.audience is not None,
            "require_aud": False,
            "verify_iss": rules.issuer is not None,
            "require_iss": False,  # a missing iss fails the issuer check, a claims error
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
            check_form(token, jwt.get_unverified_header(token))
            claims = jwt.decode(
                token,
                self._keys,
                algorithms=list(self._rules.algorithms),
                audience=self._rules.audience,
                issuer=self._rules.issuer,
                options=self._options,
            )
        except ExpiredSignatureError:  # raised only once the signature is verified
            raise self._rules.expiry_failure(jwt.get_unverified_claims(token)) from None
        except JWTClaimsError as error:  # so is this
            claims = jwt.get_unverified_claims(token)
            raise self._rules.claims_failure(failure_reason(error), claims) from None
        except AuthenticationFailed:
            raise
        except (TypeError, OverflowError):  # python-jose's int() of a null or infinite time claim
            raise self._unreadable_time_claim(token) from None
        except JWTError as error:
            raise AuthenticationFailed(failure_reason(error)) from None
        except Exception:  # noqa: BLE001  # any parse failure of hostile input is a bad token
            raise AuthenticationFailed("malformed token") from None
        return self._rules.principal(claims)

    def _unreadable_time_claim(self, token: str) -> AuthenticationFailed:
        """A refusal for an ``exp``, ``nbf`` or ``iat`` python-jose cannot read.

        The user is named only if the signature holds: python-jose reads the claims after it,
        but its error does not say so.
        """
        try:
            jws.verify(token, self._keys, list(self._rules.algorithms))
        except Exception:  # noqa: BLE001  # a bad signature, or anything else: nobody to name
            return AuthenticationFailed("malformed token")
        reason = "claim 'exp', 'nbf' or 'iat' is not a NumericDate"
        return self._rules.claims_failure(reason, jwt.get_unverified_claims(token))
