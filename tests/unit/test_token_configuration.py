"""Which verifier the configuration builds: shared secret, JWKS, or both routed by ``alg``."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.http.cursor import InvalidCursor, SyncTokenCodec
from adapters.jwt.jose_verifier import JoseTokenVerifier
from adapters.jwt.jwks_verifier import JwksTokenVerifier
from adapters.jwt.routing_verifier import AlgorithmRoutingVerifier
from adapters.jwt.rules import JwtRules
from application.errors import AuthenticationFailed
from application.sync import FeedPosition
from bootstrap.app import create_app, create_container
from bootstrap.container import _cursor_keys
from bootstrap.settings import ConfigError, Settings, load_settings
from tests.jwks import BETTER_AUTH_URL, JwksServer, SigningKey, hmac_token, jwks
from tests.tokens import SECRET, make_token

DB = "postgresql://u:pw@127.0.0.1:1/db"
JWKS_URL = "https://auth.example.com/api/auth/jwks"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **{"database_url": DB, **values})


@pytest.fixture(scope="module")
def ed_key() -> SigningKey:
    return SigningKey.generate("EdDSA")


@pytest.fixture
def server(ed_key: SigningKey) -> Iterator[JwksServer]:
    jwks_server = JwksServer(jwks(ed_key)).start()
    yield jwks_server
    jwks_server.stop()


# --- JWT_ALGORITHMS defaults and combinations ------------------------------------------------


@pytest.mark.parametrize(
    ("values", "hmac_algorithms", "jwks_algorithms"),
    [
        ({"jwt_secret": SECRET}, ("HS256",), ()),
        ({"jwt_jwks_url": JWKS_URL}, (), ("EdDSA", "ES256", "RS256")),
        ({"jwt_secret": SECRET, "jwt_jwks_url": JWKS_URL}, ("HS256",), ("EdDSA", "ES256", "RS256")),
        (
            {"jwt_secret": SECRET, "jwt_jwks_url": JWKS_URL, "jwt_algorithms": "HS512,EdDSA"},
            ("HS512",),
            ("EdDSA",),
        ),
        ({"jwt_secret": SECRET, "jwt_algorithms": "HS384,EdDSA"}, ("HS384",), ()),
        ({"jwt_jwks_url": JWKS_URL, "jwt_algorithms": "PS256, ES384"}, (), ("PS256", "ES384")),
    ],
)
def test_algorithms_follow_the_configured_key_sources(
    values: dict[str, Any], hmac_algorithms: tuple[str, ...], jwks_algorithms: tuple[str, ...]
) -> None:
    verification = settings(**values).token_verification()
    assert verification.hmac_algorithms == hmac_algorithms
    assert verification.jwks_algorithms == jwks_algorithms


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({}, "JWT_SECRET"),
        ({"jwt_jwks_url": JWKS_URL, "jwt_algorithms": "HS256"}, "JWT_ALGORITHMS"),
        ({"jwt_secret": SECRET, "jwt_algorithms": "EdDSA,RS256"}, "JWT_ALGORITHMS"),
        # Both sources, algorithms for only one: the other would be off without a word.
        (
            {"jwt_secret": SECRET, "jwt_jwks_url": JWKS_URL, "jwt_algorithms": "HS256"},
            "JWT_ALGORITHMS",
        ),
        (
            {"jwt_secret": SECRET, "jwt_jwks_url": JWKS_URL, "jwt_algorithms": "EdDSA"},
            "JWT_ALGORITHMS",
        ),
    ],
)
def test_unusable_combinations_are_one_line_errors(values: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(**values).token_verification()
    message = str(raised.value)
    assert name in message.split(":", maxsplit=1)[0]
    assert "\n" not in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("variables", "name"),
    [
        ({"JWT_JWKS_URL": "ftp://auth.example/jwks"}, "JWT_JWKS_URL"),
        ({"JWT_JWKS_URL": "auth.example.com/api/auth/jwks"}, "JWT_JWKS_URL"),
        ({"JWT_JWKS_CACHE_SECONDS": "0"}, "JWT_JWKS_CACHE_SECONDS"),
        ({"CURSOR_SECRET": "short"}, "CURSOR_SECRET"),
        (
            {"CURSOR_SECRET": "n" * 40, "CURSOR_PREVIOUS_SECRETS": "o" * 40 + ",short"},
            "CURSOR_PREVIOUS_SECRETS",
        ),
        ({"JWT_ALGORITHMS": "EdDSA,HS256,none"}, "JWT_ALGORITHMS"),
    ],
)
def test_bad_variables_are_named_in_one_line(
    variables: dict[str, str], name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"{name}: ")
    assert "\n" not in str(raised.value)


def test_only_a_jwks_passes_the_serve_check_and_fetches_nothing(server: JwksServer) -> None:
    only_jwks = settings(jwt_jwks_url=server.url)
    only_jwks.token_verification()
    create_app(only_jwks)
    assert server.requests == 0


def test_the_token_command_needs_the_shared_secret() -> None:
    with pytest.raises(ConfigError, match=r"^JWT_SECRET: .*JWT_JWKS_URL"):
        settings(jwt_jwks_url=JWKS_URL).shared_secret()
    both = settings(jwt_secret=SECRET, jwt_jwks_url=JWKS_URL, jwt_algorithms="EdDSA,HS384")
    assert both.signing_algorithm() == "HS384"


# --- the verifier the container builds ---------------------------------------------------------


def _inner(values: dict[str, Any]) -> object:
    container = create_container(settings(**values))
    return container.token_verifier()._inner  # which adapter got wired


def test_the_container_wires_one_verifier_per_configuration() -> None:
    assert isinstance(_inner({"jwt_secret": SECRET}), JoseTokenVerifier)
    assert isinstance(_inner({"jwt_jwks_url": JWKS_URL}), JwksTokenVerifier)
    both = {"jwt_secret": SECRET, "jwt_jwks_url": JWKS_URL}
    assert isinstance(_inner(both), AlgorithmRoutingVerifier)


async def test_with_both_hs_and_eddsa_tokens_are_accepted(
    ed_key: SigningKey, server: JwksServer
) -> None:
    container = create_container(
        settings(
            jwt_secret=SECRET,
            jwt_jwks_url=server.url,
            jwt_issuer=BETTER_AUTH_URL,
            jwt_audience=BETTER_AUTH_URL,
        )
    )
    verifier = container.token_verifier()
    hs = make_token("alice", aud=BETTER_AUTH_URL, iss=BETTER_AUTH_URL)
    assert (await verifier.verify(hs)).user_id == "alice"
    assert server.requests == 0  # an HS token never touches the JWKS
    assert (await verifier.verify(ed_key.better_auth_token("bob"))).user_id == "bob"
    assert server.requests == 1


async def test_routing_refuses_confusion_and_unrouted_algorithms(
    ed_key: SigningKey, server: JwksServer
) -> None:
    routing = AlgorithmRoutingVerifier(
        {
            "HS256": JoseTokenVerifier(SECRET, JwtRules()),
            "EdDSA": JwksTokenVerifier(server.url, JwtRules(algorithms=("EdDSA",))),
        }
    )
    # An HS256 token keyed with the public key goes to the HMAC verifier, whose secret differs.
    for token in (
        hmac_token(ed_key.public_pem(), kid=ed_key.kid),
        make_token("alice", algorithm="HS512"),
        SigningKey.generate("ES256").token(),
        "not-a-token",
    ):
        with pytest.raises(AuthenticationFailed):
            await routing.verify(token)
    assert server.requests == 0


# --- the cursor key ----------------------------------------------------------------------------


POSITION = FeedPosition(seq=41, task_id=7, floor=3, as_of=datetime(2026, 11, 1, tzinfo=UTC))


def _key(material: str, label: bytes = b"taskapi/cursor/v1") -> bytes:
    return hmac.new(material.encode(), label, hashlib.sha256).digest()


def test_the_cursor_key_prefers_cursor_secret_then_jwt_secret_then_the_database_url() -> None:
    cursor_secret = "c" * 40
    own = _cursor_keys(settings(cursor_secret=cursor_secret, jwt_secret=SECRET))[0]
    assert own == _key(cursor_secret)
    # Unchanged from before CURSOR_SECRET existed: cursors already handed out stay valid.
    from_jwt = _cursor_keys(settings(jwt_secret=SECRET))[0]
    assert from_jwt == _key(SECRET)
    from_url = _cursor_keys(settings(jwt_jwks_url=JWKS_URL))[0]
    assert from_url == _key(DB, b"taskapi/cursor/v1/from-database-url")  # same in every replica
    assert from_url != _cursor_keys(settings(jwt_jwks_url=JWKS_URL, database_url=DB + "2"))[0]
    assert len({own, from_jwt, from_url}) == 3


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/tasks",  # trust or peer authentication
        "postgresql:///tasks?host=/run/postgresql",
        "postgresql://u:@db.example/tasks",
    ],
)
def test_without_a_secret_a_database_url_without_a_password_is_refused(url: str) -> None:
    # Such a URL is no secret: a key derived from it would let anyone read and forge cursors.
    with pytest.raises(ConfigError, match="CURSOR_SECRET"):
        _cursor_keys(settings(jwt_jwks_url=JWKS_URL, database_url=url))
    with_password = url + ("&" if "?" in url else "?") + "password=p"
    key = _cursor_keys(settings(jwt_jwks_url=JWKS_URL, database_url=with_password))
    assert len(key) == 1


def test_only_the_sealing_source_and_the_secrets_it_lists_as_previous_open_tokens() -> None:
    new_cursor, old_cursor, old_jwt = "n" * 40, "o" * 40, "j" * 40
    assert _cursor_keys(
        settings(
            cursor_secret=new_cursor,
            cursor_previous_secrets=old_cursor,
            jwt_secret=SECRET,
            jwt_previous_secrets=old_jwt,
        )
    ) == (_key(new_cursor), _key(old_cursor))
    assert _cursor_keys(settings(jwt_secret=SECRET, jwt_previous_secrets=old_jwt)) == (
        _key(SECRET),
        _key(old_jwt),
    )
    # The DATABASE_URL's key (its password may be a published default) opens nothing once a
    # secret seals: a token sealed under it by anyone who knows the URL is refused.
    kept = SyncTokenCodec(_cursor_keys(settings(jwt_jwks_url=JWKS_URL))).encode("alice", POSITION)
    with pytest.raises(InvalidCursor):
        SyncTokenCodec(_cursor_keys(settings(jwt_secret=SECRET))).decode(kept, "alice")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # Setting CURSOR_SECRET: the JWT secret it takes over from is listed as previous.
        (
            {"jwt_secret": SECRET},
            {"jwt_secret": SECRET, "cursor_secret": "c" * 40, "cursor_previous_secrets": SECRET},
        ),
        ({"jwt_secret": "j" * 40}, {"jwt_secret": SECRET, "jwt_previous_secrets": "j" * 40}),
        (
            {"cursor_secret": "o" * 40},
            {"cursor_secret": "n" * 40, "cursor_previous_secrets": "o" * 40},
        ),
    ],
    ids=["cursor-secret-set", "jwt-secret-rotated", "cursor-secret-rotated"],
)
def test_a_sync_token_kept_by_a_client_survives_a_documented_rotation(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    kept = SyncTokenCodec(_cursor_keys(settings(**before))).encode("alice", POSITION)
    assert SyncTokenCodec(_cursor_keys(settings(**after))).decode(kept, "alice") == POSITION


def test_a_dropped_secret_opens_nothing() -> None:
    kept = SyncTokenCodec(_cursor_keys(settings(jwt_secret=SECRET))).encode("alice", POSITION)
    with pytest.raises(InvalidCursor):  # CURSOR_SECRET set without listing the JWT secret
        SyncTokenCodec(_cursor_keys(settings(jwt_secret=SECRET, cursor_secret="c" * 40))).decode(
            kept, "alice"
        )


def test_previous_cursor_secrets_need_a_cursor_secret() -> None:
    with pytest.raises(ConfigError, match=r"^CURSOR_PREVIOUS_SECRETS: .*no CURSOR_SECRET"):
        _cursor_keys(settings(jwt_secret=SECRET, cursor_previous_secrets="o" * 40))
