"""``JwksTokenVerifier``: JWTs signed with asymmetric keys published as a JWKS, verified with PyJWT.

Made for Better Auth's ``jwt()`` plugin (EdDSA/Ed25519 by default, ES256 or RS256 optional, keys
at ``/api/auth/jwks``, a ``kid`` in every token header), and for any issuer that publishes a JWKS.
python-jose has no EdDSA; PyJWT (with ``cryptography``) verifies EdDSA, ECDSA, RSA and RSA-PSS,
and binds each ``PyJWK`` to one algorithm, so the token's header cannot choose another.

Keys are fetched lazily (never at start-up), with ``httpx`` on the event loop and a hard deadline,
and kept for ``cache_seconds``. A token naming an unknown ``kid`` triggers a refetch, so a key
rotation needs no restart; fetches are rate limited (at most one per ``refetch_min_interval``) and
concurrent requests share one. While the JWKS cannot be fetched, the keys already known keep
working and every other token is refused with ``AuthenticationFailed`` (a 401, never a 500).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import jwt
from jwt.types import Options

from adapters.jwt.rules import (
    ASYMMETRIC_ALGORITHMS,
    JwtRules,
    VerifierConfigError,
    check_form,
    failure_reason,
)
from application.auth import MAX_TOKEN_LENGTH
from application.errors import AuthenticationFailed
from application.ports import Principal

_CLAIMS_ERRORS: Final = (
    jwt.ImmatureSignatureError,
    jwt.InvalidAudienceError,
    jwt.InvalidIssuedAtError,
    jwt.InvalidIssuerError,
    jwt.MissingRequiredClaimError,
)
"""PyJWT's refusals of a token's claims, raised only after its signature held."""

MAX_JWKS_BYTES: Final = 64 * 1024
"""A larger key-set response is refused: a real one holds a handful of keys (a few KiB)."""

MAX_JWKS_KEYS: Final = 100

_RSA: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVES: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_OKP_CURVES: Final = frozenset({"Ed25519", "Ed448"})

log = logging.getLogger("taskapi.jwks")


class JwksUnavailable(Exception):
    """The key set could not be fetched or was not a usable JWKS."""


@dataclass(frozen=True, slots=True)
class _KeySet:
    """The verification keys of one fetched JWKS: by ``kid``, and all of them in order."""

    by_kid: Mapping[str, Mapping[str, jwt.PyJWK]]
    """``kid`` → algorithm → key bound to that algorithm."""
    all_keys: tuple[Mapping[str, jwt.PyJWK], ...] = ()

    def find(self, kid: str | None) -> Mapping[str, jwt.PyJWK] | None:
        """The key with this ``kid``; without one, the key only if the set holds exactly one."""
        if kid is not None:
            return self.by_kid.get(kid)
        return self.all_keys[0] if len(self.all_keys) == 1 else None


_EMPTY: Final = _KeySet(by_kid={})


def default_client_factory(url: str, timeout: float) -> Callable[[], httpx.AsyncClient]:
    """A factory of short-lived clients for ``url``, sharing one TLS context built now.

    One client per fetch (a fetch happens every few minutes at most) leaves nothing open to
    close at shutdown and binds nothing to an event loop; the TLS context (loading the CA bundle
    takes milliseconds of CPU) is built once, here, at start-up, not on the event loop.
    """
    verify: ssl.SSLContext | bool = (
        httpx.create_ssl_context() if urlsplit(url).scheme == "https" else True
    )

    def build() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            verify=verify,
            follow_redirects=False,
            headers={"Accept": "application/jwk-set+json, application/json"},
        )

    return build


class JwksTokenVerifier:
    """Verifies tokens signed with asymmetric keys from a JWKS URL.

    Only asymmetric algorithms from ``rules.algorithms`` are accepted, and only with a key whose
    type (and curve) fits the algorithm; a JWK that names its ``alg`` is used with that one only.
    ``exp`` is required; ``aud``/``iss`` are required and checked when configured.
    """

    def __init__(
        self,
        url: str,
        rules: JwtRules,
        *,
        cache_seconds: float = 300,
        refetch_min_interval: float = 30,
        fetch_timeout: float = 3.0,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if urlsplit(url).scheme not in {"http", "https"} or not urlsplit(url).hostname:
            raise VerifierConfigError("the JWKS URL must be an http(s) URL")
        algorithms = tuple(name for name in rules.algorithms if name in ASYMMETRIC_ALGORITHMS)
        if not algorithms:
            raise VerifierConfigError(
                "a JWKS verifier accepts only asymmetric algorithms "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))})"
            )
        if cache_seconds <= 0 or refetch_min_interval < 0 or fetch_timeout <= 0:
            raise VerifierConfigError("cache, refetch interval and timeout must be positive")
        self._url = url
        self._rules = rules
        self._algorithms = frozenset(algorithms)
        self._cache_seconds = cache_seconds
        self._refetch_min_interval = refetch_min_interval
        self._fetch_timeout = fetch_timeout
        self._client_factory = client_factory or default_client_factory(url, fetch_timeout)
        self._monotonic = monotonic
        self._keys = _EMPTY
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self._attempts = 0
        self._lock = asyncio.Lock()
        self._options: Options = {
            "require": [
                "exp",
                *(["aud"] if rules.audience is not None else []),
                *(["iss"] if rules.issuer is not None else []),
            ],
            "verify_aud": rules.audience is not None,
            "verify_iss": rules.issuer is not None,
            # iat is informational (as with the shared-secret verifier): refusing a token "issued
            # in the future" would turn a second of clock skew with the auth server into 401s.
            "verify_iat": False,
            "verify_sub": False,  # checked below, for the configured claim only
            "verify_jti": False,
            "enforce_minimum_key_length": True,  # an RSA key under 2048 bits is refused
        }

    @property
    def algorithms(self) -> Iterable[str]:
        """The accepted algorithms."""
        return sorted(self._algorithms)

    @property
    def fetch_count(self) -> int:
        """How many times the JWKS was fetched (or tried): for metrics and tests."""
        return self._attempts

    async def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except Exception:  # noqa: BLE001  # any parse failure of hostile input is a bad token
            raise AuthenticationFailed("malformed token") from None
        check_form(token, header)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise AuthenticationFailed("token algorithm not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationFailed("malformed key id")
        candidates = await self._key_for(kid)
        if candidates is None:
            raise AuthenticationFailed(
                "no key with the token's key id" if kid is not None else "token has no key id"
            )
        key = candidates.get(algorithm)
        if key is None:
            raise AuthenticationFailed("token algorithm does not match its key")
        return self._decode(token, key, algorithm)

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._rules.audience,
                issuer=self._rules.issuer,
                leeway=self._rules.leeway_seconds,
                options=self._options,
            )
        except jwt.ExpiredSignatureError:  # raised only once the signature is verified
            verified = jwt.decode(token, options={"verify_signature": False})
            raise self._rules.expiry_failure(verified) from None
        except _CLAIMS_ERRORS as error:  # so are these
            verified = jwt.decode(token, options={"verify_signature": False})
            raise self._rules.claims_failure(failure_reason(error), verified) from None
        except jwt.PyJWTError as error:
            raise AuthenticationFailed(failure_reason(error)) from None
        except Exception:  # noqa: BLE001  # any parse failure of hostile input is a bad token
            raise AuthenticationFailed("malformed token") from None
        return self._rules.principal(claims)

    async def _key_for(self, kid: str | None) -> Mapping[str, jwt.PyJWK] | None:
        """The key the token names, refetching the JWKS when it is stale or lacks that key."""
        known = self._keys.find(kid)
        if known is not None and (self._is_fresh() or self._lock.locked()):
            # Fresh, or a refresh is already in flight: the key we have is good enough now.
            return known
        if not self._may_fetch():
            return known
        attempts = self._attempts
        async with self._lock:
            # Whoever held the lock may have fetched already: share that fetch.
            if self._attempts == attempts and self._may_fetch():
                await self._refresh()
        return self._keys.find(kid)

    def _is_fresh(self) -> bool:
        return (
            self._fetched_at is not None
            and self._monotonic() - self._fetched_at < self._cache_seconds
        )

    def _may_fetch(self) -> bool:
        return (
            self._attempted_at is None
            or self._monotonic() - self._attempted_at >= self._refetch_min_interval
        )

    async def _refresh(self) -> None:
        self._attempts += 1
        try:
            keys = await self._fetch()
        except Exception as error:  # noqa: BLE001  # an unreachable JWKS means 401s, never a 500
            log.warning(
                "JWKS fetch failed; keeping %d known keys",
                len(self._keys.all_keys),
                extra={"error": type(error).__name__, "reason": str(error)[:200]},
            )
        else:
            self._keys = keys
            self._fetched_at = self._monotonic()
        finally:
            self._attempted_at = self._monotonic()

    async def _fetch(self) -> _KeySet:
        """Fetch and parse the JWKS, within ``fetch_timeout`` seconds in all."""
        async with (
            asyncio.timeout(self._fetch_timeout),
            self._client_factory() as client,
            client.stream("GET", self._url) as response,
        ):
            if response.status_code != httpx.codes.OK:
                raise JwksUnavailable(f"HTTP status {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
                raise JwksUnavailable("response too large")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksUnavailable("response too large")
        return self._parse(bytes(body))

    def _parse(self, body: bytes) -> _KeySet:
        try:
            document = json.loads(body)
        except ValueError:
            raise JwksUnavailable("response is not JSON") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list) or len(entries) > MAX_JWKS_KEYS:
            raise JwksUnavailable("response is not a JWKS")
        by_kid: dict[str, Mapping[str, jwt.PyJWK]] = {}
        all_keys: list[Mapping[str, jwt.PyJWK]] = []
        for entry in entries:
            keys = self._usable(entry) if isinstance(entry, dict) else {}
            if not keys:
                continue
            all_keys.append(keys)
            kid = entry.get("kid")
            if isinstance(kid, str) and kid not in by_kid:
                by_kid[kid] = keys
        if not all_keys:
            raise JwksUnavailable("no usable signature key in the JWKS")
        return _KeySet(by_kid=by_kid, all_keys=tuple(all_keys))

    def _usable(self, entry: dict[str, Any]) -> dict[str, jwt.PyJWK]:
        """The accepted algorithms this JWK may verify, each with the key bound to it."""
        if entry.get("use", "sig") != "sig":
            return {}
        named = entry.get("alg")
        candidates = [named] if named is not None else sorted(self._algorithms)
        keys: dict[str, jwt.PyJWK] = {}
        for algorithm in candidates:
            if algorithm in self._algorithms and _fits(entry, algorithm):
                try:
                    keys[algorithm] = jwt.PyJWK(entry, algorithm=algorithm)
                except Exception:  # noqa: BLE001, S112  # a malformed key is skipped, not fatal
                    continue
        return keys


def _fits(entry: Mapping[str, Any], algorithm: str) -> bool:
    """Whether the JWK's type (and curve) is the one ``algorithm`` signs with."""
    kty = entry.get("kty")
    if algorithm in _RSA:
        return kty == "RSA"
    if algorithm in _EC_CURVES:
        return kty == "EC" and entry.get("crv") == _EC_CURVES[algorithm]
    if algorithm == "EdDSA":
        return kty == "OKP" and entry.get("crv") in _OKP_CURVES
    return False
