"""``JoseTokenVerifier`` with real tokens signed by PyJWT (an independent implementation)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from adapters.jwt.jose_verifier import JoseTokenVerifier
from adapters.jwt.rules import JwtRules, VerifierConfigError
from application.errors import AuthenticationFailed, TokenExpired
from tests.tokens import OTHER_SECRET, SECRET, make_token


def verifier(**rules: object) -> JoseTokenVerifier:
    return JoseTokenVerifier(SECRET, JwtRules(**rules))  # type: ignore[arg-type]  # test overrides by name


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, object]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


async def test_a_valid_token_gives_its_subject() -> None:
    principal = await verifier().verify(make_token("alice"))
    assert principal.user_id == "alice"


async def test_an_expired_token_is_token_expired() -> None:
    with pytest.raises(TokenExpired):
        await verifier().verify(make_token("alice", ttl=-10))


async def test_leeway_admits_a_just_expired_token() -> None:
    token = make_token("alice", ttl=-5)
    assert (await verifier(leeway_seconds=30).verify(token)).user_id == "alice"


def _now() -> int:
    return int(time.time())


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(make_token("alice", secret=OTHER_SECRET), id="wrong key"),
        pytest.param(make_token("alice", algorithm="HS512"), id="HS512 when only HS256"),
        pytest.param(make_token("alice", exp=None), id="no exp"),
        pytest.param(make_token("alice", nbf=_now() + 600), id="not yet valid"),
        pytest.param(make_token(None), id="no sub"),
        pytest.param(make_token(""), id="empty sub"),
        pytest.param(make_token(42), id="numeric sub"),
        pytest.param(make_token("a" * 300), id="overlong sub"),
        pytest.param(make_token("al\u0000ice"), id="NUL in sub"),
        pytest.param(unsigned_token({"sub": "alice", "exp": _now() + 600}), id="alg none"),
        pytest.param("not.a.jwt", id="garbage"),
        pytest.param("eyJhbGciOiJIUzI1NiJ9.%%%.abc", id="bad base64"),
        pytest.param("", id="empty"),
        pytest.param(make_token("alice", exp="tomorrow"), id="non-numeric exp"),
    ],
)
async def test_untrustworthy_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthenticationFailed) as raised:
        await verifier().verify(token)
    assert token not in raised.value.reason or not token


async def test_a_token_signed_with_an_empty_key_is_refused() -> None:
    # python-jose 3.5 would accept this if it were ever configured with an empty secret.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"sub": "alice", "exp": _now() + 600}).encode())
    signature = hmac.new(b"", f"{header}.{claims}".encode(), hashlib.sha256).digest()
    token = f"{header}.{claims}.{_b64(signature)}"
    with pytest.raises(AuthenticationFailed):
        await verifier().verify(token)


async def test_audience_and_issuer_when_configured() -> None:
    strict = verifier(audience="taskapi", issuer="https://auth.example")
    good = make_token("alice", aud="taskapi", iss="https://auth.example")
    assert (await strict.verify(good)).user_id == "alice"
    for bad in (
        make_token("alice", iss="https://auth.example"),  # aud missing
        make_token("alice", aud="other", iss="https://auth.example"),
        make_token("alice", aud="taskapi"),  # iss missing
        make_token("alice", aud="taskapi", iss="https://evil.example"),
    ):
        with pytest.raises(AuthenticationFailed):
            await strict.verify(bad)


AUD_ISS: dict[str, Any] = {"aud": "taskapi", "iss": "https://auth.example"}


def _signed(claims: dict[str, Any], secret: str = SECRET) -> str:
    """A token of exactly ``claims`` (null ones kept), with the audience and issuer expected."""
    return jwt.encode(AUD_ISS | claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("token", "subject"),
    [
        pytest.param(make_token("alice", ttl=-10, **AUD_ISS), "alice", id="expired"),
        pytest.param(make_token("alice", nbf=_now() + 600, **AUD_ISS), "alice", id="nbf"),
        pytest.param(make_token("alice", **(AUD_ISS | {"aud": "other"})), "alice", id="aud"),
        pytest.param(make_token("alice", **(AUD_ISS | {"iss": "https://x"})), "alice", id="iss"),
        pytest.param(make_token("alice", exp=True, **AUD_ISS), "alice", id="boolean exp"),
        pytest.param(make_token("alice", exp=None, **AUD_ISS), "alice", id="no exp"),
        pytest.param(_signed({"sub": "alice", "exp": None}), "alice", id="null exp"),
        pytest.param(
            _signed({"sub": "alice", "exp": _now() + 60, "nbf": None}), "alice", id="null nbf"
        ),
        pytest.param(
            _signed({"sub": "alice", "exp": None}, OTHER_SECRET), None, id="null exp, forged"
        ),
        pytest.param(make_token("alice", ttl=60, iss=AUD_ISS["iss"]), "alice", id="no aud"),
        pytest.param(make_token("alice", ttl=60, aud=AUD_ISS["aud"]), "alice", id="no iss"),
        pytest.param(make_token("al\u0000ice", ttl=-10, **AUD_ISS), None, id="unusable sub"),
        pytest.param(
            make_token("alice", ttl=-10, secret=OTHER_SECRET, **AUD_ISS), None, id="forged"
        ),
        pytest.param(
            unsigned_token({"sub": "alice", "exp": _now() - 10, **AUD_ISS}), None, id="unsigned"
        ),
    ],
)
async def test_a_refusal_names_the_user_only_when_the_signature_held(
    token: str, subject: str | None
) -> None:
    strict = verifier(audience="taskapi", issuer="https://auth.example")
    with pytest.raises(AuthenticationFailed) as refused:
        await strict.verify(token)
    assert refused.value.subject == subject


async def test_audience_is_ignored_when_not_configured() -> None:
    assert (await verifier().verify(make_token("alice", aud="anything"))).user_id == "alice"


async def test_the_user_id_claim_is_configurable() -> None:
    custom = verifier(user_id_claim="uid")
    assert (await custom.verify(make_token("ignored", uid="u-123"))).user_id == "u-123"
    with pytest.raises(AuthenticationFailed):
        await custom.verify(make_token("alice"))


def test_a_short_secret_is_refused_at_construction() -> None:
    with pytest.raises(VerifierConfigError):
        JoseTokenVerifier("too-short", JwtRules())
    with pytest.raises(VerifierConfigError):
        JoseTokenVerifier("", JwtRules())


@pytest.mark.parametrize("algorithms", [(), ("none",), ("RS256",), ("HS256", "ES256")])
def test_only_hmac_algorithms_are_accepted_for_a_shared_secret(
    algorithms: tuple[str, ...],
) -> None:
    with pytest.raises(VerifierConfigError):
        JoseTokenVerifier(SECRET, JwtRules(algorithms=algorithms))
