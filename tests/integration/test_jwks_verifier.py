"""``JwksTokenVerifier`` against a real JWKS over real HTTP, with real keys and PyJWT tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.jwt.jwks_verifier import MAX_JWKS_BYTES, JwksTokenVerifier
from adapters.jwt.rules import JwtRules, VerifierConfigError
from application.errors import AuthenticationFailed, TokenExpired
from tests.jwks import BETTER_AUTH_URL, JwksServer, SigningKey, hmac_token, jwks
from tests.process import free_port


class FakeMonotonic:
    """A monotonic clock the test moves forward by hand (rate limits without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def ed_key() -> SigningKey:
    return SigningKey.generate("EdDSA")


@pytest.fixture(scope="module")
def es_key() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def rs_key() -> SigningKey:
    return SigningKey.generate("RS256")


@pytest.fixture
def server(ed_key: SigningKey, es_key: SigningKey, rs_key: SigningKey) -> Iterator[JwksServer]:
    jwks_server = JwksServer(jwks(ed_key, es_key, rs_key)).start()
    yield jwks_server
    jwks_server.stop()


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


ALL = ("EdDSA", "ES256", "RS256")


def verifier(
    url: str,
    *,
    clock: FakeMonotonic | None = None,
    algorithms: tuple[str, ...] = ALL,
    cache_seconds: float = 300,
    refetch_min_interval: float = 30,
    fetch_timeout: float = 3.0,
    **rules: Any,
) -> JwksTokenVerifier:
    return JwksTokenVerifier(
        url,
        JwtRules(algorithms=algorithms, **rules),
        cache_seconds=cache_seconds,
        refetch_min_interval=refetch_min_interval,
        fetch_timeout=fetch_timeout,
        monotonic=clock or FakeMonotonic(),
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(kid: str) -> str:
    now = int(time.time())
    header = _b64(json.dumps({"alg": "none", "kid": kid}).encode())
    return f"{header}.{_b64(json.dumps({'sub': 'alice', 'exp': now + 600}).encode())}."


# --- valid tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALL)
async def test_a_valid_token_of_each_algorithm_is_accepted(
    algorithm: str, ed_key: SigningKey, es_key: SigningKey, rs_key: SigningKey, server: JwksServer
) -> None:
    key = {"EdDSA": ed_key, "ES256": es_key, "RS256": rs_key}[algorithm]
    token = key.token("alice", ttl=600)
    principal = await verifier(server.url).verify(token)
    assert principal.user_id == "alice"
    assert principal.expires_at is not None
    assert principal.expires_at == pytest.approx(time.time() + 600, abs=5)


async def test_a_better_auth_token_is_accepted_with_its_issuer_and_audience(
    ed_key: SigningKey, server: JwksServer
) -> None:
    strict = verifier(server.url, audience=BETTER_AUTH_URL, issuer=BETTER_AUTH_URL)
    token = ed_key.better_auth_token("user_2abc")
    principal = await strict.verify(token)
    assert principal.user_id == "user_2abc"
    assert principal.expires_at == pytest.approx(time.time() + 900, abs=5)


async def test_keys_without_alg_are_matched_by_type_and_curve() -> None:
    ed, es, rs = (SigningKey.generate(a) for a in ("EdDSA", "ES256", "PS256"))
    document = {"keys": [key.jwk(with_alg=False) for key in (ed, es, rs)]}
    with_server = JwksServer(document).start()
    try:
        check = verifier(with_server.url, algorithms=("EdDSA", "ES256", "PS256"))
        for key in (ed, es, rs):
            assert (await check.verify(key.token("bob"))).user_id == "bob"
        # The RSA key fits PS256 here, never RS256 (not accepted) and never ES256 (wrong type).
        with pytest.raises(AuthenticationFailed):
            await check.verify(rs.sign(_claims(), algorithm="RS256"))
    finally:
        with_server.stop()


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 600, **extra}


async def test_the_user_id_claim_is_configurable(ed_key: SigningKey, server: JwksServer) -> None:
    check = verifier(server.url, user_id_claim="uid")
    assert (await check.verify(ed_key.token("ignored", uid="u-1"))).user_id == "u-1"
    with pytest.raises(AuthenticationFailed):
        await check.verify(ed_key.token("alice"))


async def test_leeway_admits_a_just_expired_token(ed_key: SigningKey, server: JwksServer) -> None:
    principal = await verifier(server.url, leeway_seconds=30).verify(ed_key.token(ttl=-5))
    assert principal.expires_at == pytest.approx(time.time() - 5 + 30, abs=5)


async def test_an_iat_slightly_ahead_of_our_clock_is_accepted(
    ed_key: SigningKey, server: JwksServer
) -> None:
    # The auth server's clock may run ahead of ours; iat is not a validity bound.
    token = ed_key.token(iat=int(time.time()) + 30)
    assert (await verifier(server.url).verify(token)).user_id == "alice"


# --- tokens that must be refused ------------------------------------------------------------


async def test_an_expired_token_is_token_expired(ed_key: SigningKey, server: JwksServer) -> None:
    with pytest.raises(TokenExpired):
        await verifier(server.url).verify(ed_key.token(ttl=-10))


async def test_a_token_signed_by_another_key_with_a_known_kid_is_refused(
    ed_key: SigningKey, server: JwksServer
) -> None:
    impostor = SigningKey.generate("EdDSA", kid=ed_key.kid)
    with pytest.raises(AuthenticationFailed, match=r"[Ss]ignature"):
        await verifier(server.url).verify(impostor.token())


@pytest.mark.parametrize(
    ("name", "claims"),
    [
        ("nbf in the future", {"nbf": int(time.time()) + 600}),
        ("no exp", {"exp": None}),
        ("empty sub", {"sub": ""}),
        ("numeric sub", {"sub": 42}),
        ("overlong sub", {"sub": "a" * 300}),
        ("control character in sub", {"sub": "al\nice"}),
        ("non-numeric exp", {"exp": "tomorrow"}),
    ],
)
async def test_bad_claims_are_refused(
    name: str, claims: dict[str, Any], ed_key: SigningKey, server: JwksServer
) -> None:
    payload = {key: value for key, value in _claims(**claims).items() if value is not None}
    with pytest.raises(AuthenticationFailed):
        await verifier(server.url).verify(ed_key.sign(payload))


@pytest.mark.parametrize("exp", [True, False])
async def test_a_boolean_exp_is_no_date_rather_than_expired(
    exp: bool, ed_key: SigningKey, server: JwksServer
) -> None:
    with pytest.raises(AuthenticationFailed, match="NumericDate") as refused:
        await verifier(server.url).verify(ed_key.sign(_claims(exp=exp)))
    assert not isinstance(refused.value, TokenExpired)


async def test_issuer_and_audience_are_checked_when_configured(
    ed_key: SigningKey, server: JwksServer
) -> None:
    strict = verifier(server.url, audience=BETTER_AUTH_URL, issuer=BETTER_AUTH_URL)
    for bad in (
        ed_key.token(iss=BETTER_AUTH_URL),  # no aud
        ed_key.token(aud=BETTER_AUTH_URL),  # no iss
        ed_key.token(aud="https://other.example", iss=BETTER_AUTH_URL),
        ed_key.token(aud=BETTER_AUTH_URL, iss="https://evil.example"),
    ):
        with pytest.raises(AuthenticationFailed):
            await strict.verify(bad)


@pytest.mark.parametrize(
    ("claims", "subject"),
    [
        ({"exp": int(time.time()) - 10}, "alice"),
        ({"nbf": int(time.time()) + 600}, "alice"),
        ({"aud": "https://other.example", "iss": BETTER_AUTH_URL}, "alice"),
        ({"aud": BETTER_AUTH_URL, "iss": "https://evil.example"}, "alice"),
        ({"exp": True}, "alice"),
        ({"sub": "al\nice", "exp": int(time.time()) - 10}, None),
    ],
    ids=["expired", "not yet valid", "aud", "iss", "boolean exp", "expired, unusable sub"],
)
async def test_a_refusal_names_the_user_only_when_the_signature_held(
    claims: dict[str, Any], subject: str | None, ed_key: SigningKey, server: JwksServer
) -> None:
    strict = verifier(server.url, audience=BETTER_AUTH_URL, issuer=BETTER_AUTH_URL)
    defaults = {"aud": BETTER_AUTH_URL, "iss": BETTER_AUTH_URL}
    with pytest.raises(AuthenticationFailed) as refused:
        await strict.verify(ed_key.sign(_claims(**(defaults | claims))))
    assert refused.value.subject == subject

    impostor = SigningKey.generate("EdDSA", kid=ed_key.kid)  # the same claims, forged
    with pytest.raises(AuthenticationFailed) as forged:
        await strict.verify(impostor.sign(_claims(**(defaults | claims))))
    assert forged.value.subject is None


async def test_issuer_and_audience_are_ignored_when_not_configured(
    ed_key: SigningKey, server: JwksServer
) -> None:
    token = ed_key.token(aud="https://anything.example", iss="https://whoever.example")
    assert (await verifier(server.url).verify(token)).user_id == "alice"


async def test_hs256_signed_with_the_public_key_is_refused_without_a_fetch(
    rs_key: SigningKey, ed_key: SigningKey, server: JwksServer
) -> None:
    check = verifier(server.url)
    confused = [
        hmac_token(rs_key.public_pem(), kid=rs_key.kid),
        hmac_token(json.dumps(rs_key.jwk()).encode(), kid=rs_key.kid),
        hmac_token(ed_key.public_pem(), kid=ed_key.kid),
    ]
    for token in confused:
        with pytest.raises(AuthenticationFailed, match="algorithm"):
            await check.verify(token)
    assert server.requests == 0


async def test_hs256_is_refused_even_if_listed_and_the_jwks_holds_a_secret_key() -> None:
    secret = b"a-shared-secret-that-a-jwks-must-never-carry-0123456789"
    oct_key = {"kty": "oct", "k": _b64(secret), "kid": "hmac", "alg": "HS256"}
    with_server = JwksServer({"keys": [oct_key]}).start()
    try:
        with pytest.raises(VerifierConfigError):
            verifier(with_server.url, algorithms=("HS256",))
        check = verifier(with_server.url, algorithms=("HS256", "EdDSA"))
        with pytest.raises(AuthenticationFailed):
            await check.verify(hmac_token(secret, kid="hmac"))
    finally:
        with_server.stop()


async def test_a_header_alg_that_does_not_fit_the_key_is_refused(
    ed_key: SigningKey, rs_key: SigningKey, server: JwksServer
) -> None:
    # RS256 signature, but the kid names the Ed25519 key (and the reverse).
    with pytest.raises(AuthenticationFailed, match="match"):
        await verifier(server.url).verify(rs_key.sign(_claims(), kid=ed_key.kid))
    with pytest.raises(AuthenticationFailed, match="match"):
        await verifier(server.url).verify(ed_key.sign(_claims(), kid=rs_key.kid))


async def test_alg_none_is_refused(ed_key: SigningKey, server: JwksServer) -> None:
    with pytest.raises(AuthenticationFailed):
        await verifier(server.url).verify(unsigned_token(ed_key.kid))


async def test_an_algorithm_not_configured_is_refused(
    es_key: SigningKey, server: JwksServer
) -> None:
    with pytest.raises(AuthenticationFailed, match="algorithm"):
        await verifier(server.url, algorithms=("EdDSA",)).verify(es_key.token())


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "eyJhbGciOiJFZERTQSJ9.%%%.x"])
async def test_malformed_tokens_are_refused(token: str, server: JwksServer) -> None:
    with pytest.raises(AuthenticationFailed):
        await verifier(server.url).verify(token)


async def test_an_oversized_token_is_refused_unread(ed_key: SigningKey, server: JwksServer) -> None:
    with pytest.raises(AuthenticationFailed, match="too long"):
        await verifier(server.url).verify(ed_key.token(padding="x" * 10_000))
    assert server.requests == 0


async def test_a_token_without_kid_is_tried_only_against_a_single_key(
    ed_key: SigningKey, es_key: SigningKey, server: JwksServer
) -> None:
    with pytest.raises(AuthenticationFailed, match="no key id"):
        await verifier(server.url).verify(ed_key.token(kid=False))
    single = JwksServer(jwks(ed_key)).start()
    try:
        assert (await verifier(single.url).verify(ed_key.token(kid=False))).user_id == "alice"
        with pytest.raises(AuthenticationFailed):
            await verifier(single.url).verify(es_key.token(kid=False))
    finally:
        single.stop()


# --- fetching, caching, rotation -----------------------------------------------------------


async def test_nothing_is_fetched_before_the_first_token(server: JwksServer) -> None:
    verifier(server.url)
    await asyncio.sleep(0.05)
    assert server.requests == 0


async def test_keys_are_cached_for_their_ttl(
    ed_key: SigningKey, server: JwksServer, clock: FakeMonotonic
) -> None:
    check = verifier(server.url, clock=clock, cache_seconds=300)
    for _ in range(5):
        await check.verify(ed_key.token())
    assert server.requests == 1
    clock.advance(301)
    await check.verify(ed_key.token())
    assert server.requests == 2


async def test_an_unknown_kid_refetches_once_and_accepts_a_rotated_key(
    ed_key: SigningKey, server: JwksServer, clock: FakeMonotonic
) -> None:
    check = verifier(server.url, clock=clock, refetch_min_interval=30)
    await check.verify(ed_key.token())
    assert server.requests == 1
    rotated = SigningKey.generate("EdDSA")
    server.serve(jwks(rotated, ed_key))
    clock.advance(31)
    assert (await check.verify(rotated.token("bob"))).user_id == "bob"
    assert server.requests == 2
    # Both keys keep working, without another fetch.
    await check.verify(ed_key.token())
    await check.verify(rotated.token())
    assert server.requests == 2


async def test_unknown_kids_refetch_at_most_once_per_interval(
    ed_key: SigningKey, server: JwksServer, clock: FakeMonotonic
) -> None:
    check = verifier(server.url, clock=clock, refetch_min_interval=30)
    await check.verify(ed_key.token())
    clock.advance(31)
    strangers = [SigningKey.generate("EdDSA") for _ in range(3)]
    for _ in range(10):
        for stranger in strangers:
            with pytest.raises(AuthenticationFailed, match="key id"):
                await check.verify(stranger.token(kid=uuid.uuid4().hex))
    assert server.requests == 2  # the first fetch, then one refetch in this interval
    clock.advance(10)
    with pytest.raises(AuthenticationFailed):
        await check.verify(strangers[0].token())
    assert server.requests == 2
    clock.advance(21)
    with pytest.raises(AuthenticationFailed):
        await check.verify(strangers[0].token())
    assert server.requests == 3


async def test_concurrent_unknown_kids_share_one_fetch(
    ed_key: SigningKey, clock: FakeMonotonic
) -> None:
    slow = JwksServer(jwks(ed_key)).start()
    try:
        check = verifier(slow.url, clock=clock)
        await check.verify(ed_key.token())
        rotated = SigningKey.generate("ES256")
        slow.serve(jwks(ed_key, rotated))
        slow.delay = 0.3
        clock.advance(31)
        tokens = [rotated.token(f"user-{n}") for n in range(20)] + [ed_key.token()] * 5
        principals = await asyncio.gather(*(check.verify(token) for token in tokens))
        assert [p.user_id for p in principals[:20]] == [f"user-{n}" for n in range(20)]
        assert slow.requests == 2
        assert check.fetch_count == 2
    finally:
        slow.stop()


async def test_concurrent_first_requests_share_one_fetch(ed_key: SigningKey) -> None:
    slow = JwksServer(jwks(ed_key)).start()
    slow.delay = 0.3
    try:
        check = verifier(slow.url)
        principals = await asyncio.gather(*(check.verify(ed_key.token()) for _ in range(20)))
        assert {p.user_id for p in principals} == {"alice"}
        assert slow.requests == 1
    finally:
        slow.stop()


# --- an unreachable or misbehaving JWKS -------------------------------------------------------


async def test_a_jwks_down_at_start_gives_401_then_recovers(
    ed_key: SigningKey, clock: FakeMonotonic
) -> None:
    port = free_port()
    check = verifier(f"http://127.0.0.1:{port}/api/auth/jwks", clock=clock)
    with pytest.raises(AuthenticationFailed):
        await check.verify(ed_key.token())
    late = JwksServer(jwks(ed_key), port=port).start()
    try:
        with pytest.raises(AuthenticationFailed):  # still within the retry interval
            await check.verify(ed_key.token())
        assert late.requests == 0
        clock.advance(31)
        assert (await check.verify(ed_key.token())).user_id == "alice"
        assert late.requests == 1
    finally:
        late.stop()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(500, b'{"keys": []}', id="HTTP 500"),
        pytest.param(404, b"not found", id="HTTP 404"),
        pytest.param(302, b"", id="a redirect"),
        pytest.param(200, b"<html>not json</html>", id="garbage"),
        pytest.param(200, b'["a", "list"]', id="JSON but not a JWKS"),
        pytest.param(200, b'{"keys": "none"}', id="keys not a list"),
        pytest.param(200, b'{"keys": []}', id="no keys"),
        pytest.param(200, b'{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "!"}]}', id="bad key"),
        pytest.param(
            200,
            json.dumps({"keys": [], "padding": "x" * MAX_JWKS_BYTES}).encode(),
            id="oversized",
        ),
    ],
)
async def test_a_misbehaving_jwks_gives_401(
    status: int, body: bytes, ed_key: SigningKey, server: JwksServer
) -> None:
    server.status = status
    server.body = body
    with pytest.raises(AuthenticationFailed):
        await verifier(server.url).verify(ed_key.token())
    assert server.requests == 1


async def test_known_keys_keep_working_while_a_refresh_fails(
    ed_key: SigningKey, server: JwksServer, clock: FakeMonotonic
) -> None:
    check = verifier(server.url, clock=clock, cache_seconds=60)
    await check.verify(ed_key.token())
    server.status = 503
    clock.advance(61)
    assert (await check.verify(ed_key.token("bob"))).user_id == "bob"
    assert server.requests == 2
    assert (await check.verify(ed_key.token("carol"))).user_id == "carol"
    assert server.requests == 2  # a failed refresh is not retried at once


async def test_a_slow_jwks_is_abandoned_after_the_fetch_timeout(ed_key: SigningKey) -> None:
    slow = JwksServer(jwks(ed_key)).start()
    slow.delay = 10
    try:
        check = verifier(slow.url, fetch_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(AuthenticationFailed):
            await check.verify(ed_key.token())
        assert time.monotonic() - started < 1.5
    finally:
        slow.stop()


def test_a_non_http_url_is_refused_at_construction() -> None:
    for url in ("ftp://auth.example/jwks", "file:///etc/jwks.json", "auth.example/jwks"):
        with pytest.raises(VerifierConfigError):
            JwksTokenVerifier(url, JwtRules(algorithms=ALL))
