"""The JWT attack corpus, completed: each hostile token is a 401 and exactly one security record.

``test_authentication.py`` proves the 401 answer for most of ``BAD_TOKENS``; this file adds the
tokens it lacks (every casing of ``alg: none``, an empty HMAC key, a null or false ``sub``,
garbage base64, unicode, oversized tokens and headers, ``aud``/``iss`` when configured) and, for
the whole corpus, the one ``taskapi.security`` record per refusal that never holds the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from tests.e2e.helpers import assert_problem, custom_client
from tests.tokens import OTHER_SECRET, SECRET, make_token
from tests.unit.http.conftest import StoredTasks
from tests.unit.http.test_authentication import BAD_TOKENS
from tests.unit.http.test_security_log import ATTRIBUTES, SECURITY

PATH: Final = "/api/alice/tasks"
KIB: Final = 1024


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _segment(data: object) -> str:
    return _b64(json.dumps(data, separators=(",", ":")).encode())


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 3600, **overrides}


def _hand_made(
    header: object = None,
    claims: object = None,
    *,
    key: bytes = SECRET.encode(),
    digest: Callable[[], Any] = hashlib.sha256,
) -> str:
    """A JWT built without a library: any header, any claims (``None`` values kept), any key."""
    signing_input = (
        f"{_segment(header or {'alg': 'HS256', 'typ': 'JWT'})}."
        f"{_segment(_claims() if claims is None else claims)}"
    )
    signature = hmac.new(key, signing_input.encode("ascii"), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _unsigned(alg: str, signature: str = "") -> str:
    return f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(_claims())}.{signature}"


def _unsigned_with(alg: str) -> Callable[[], str]:
    return lambda: _unsigned(alg)


def _rs256() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(_claims(), key, algorithm="RS256")


def _padded_to(size: int) -> str:
    """A token signed with the right secret, made at least ``size`` characters by a filler claim."""
    pad = max(0, (size - len(make_token("alice", pad=""))) * 3 // 4 - 4)
    token = make_token("alice", pad="p" * pad)
    while len(token) < size:
        pad += 1
        token = make_token("alice", pad="p" * pad)
    return token


NONE_CASINGS: Final = sorted(
    {"".join(chars) for chars in itertools.product(*zip("none", "NONE", strict=True))}
)

# Tokens test_authentication.py does not have; each must be a 401 ``unauthorized``.
NEW_BAD_TOKENS: dict[str, Callable[[], str]] = {
    # test_authentication.py has "none", "None" and "NONE"; here are the 13 other casings.
    **{
        f"alg {alg!r}, unsigned": _unsigned_with(alg)
        for alg in NONE_CASINGS
        if alg not in {"none", "None", "NONE"}
    },
    "alg none with a signature": lambda: _unsigned("none", _b64(b"x" * 32)),
    "alg empty string": lambda: _unsigned(""),
    "no alg in header": lambda: _hand_made({"typ": "JWT"}),
    "alg null": lambda: _hand_made({"alg": None, "typ": "JWT"}),
    "signed with an empty key": lambda: _hand_made(key=b""),
    "signed with the secret's first byte": lambda: _hand_made(key=SECRET.encode()[:1]),
    "HS256 header, HS512 signature": lambda: _hand_made(digest=hashlib.sha512),
    "RS256 with a stranger's key": _rs256,
    "kid and jku pointing elsewhere": lambda: make_token(
        "alice",
        secret=OTHER_SECRET,
        headers={"kid": "../../../../dev/null", "jku": "https://evil.example/jwks.json"},
    ),
    "sub null": lambda: _hand_made(claims=_claims(sub=None)),
    "sub false": lambda: make_token(False),
    "sub a float": lambda: make_token(1.5),
    "sub zero": lambda: make_token(0),
    "exp null": lambda: _hand_made(claims=_claims(exp=None)),
    "exp NaN": lambda: _hand_made(claims=_claims(exp=float("nan"))),
    "exp a list": lambda: _hand_made(claims=_claims(exp=[int(time.time()) + 3600])),
    # Python counts a boolean an int: the libraries read true as 1970's second 1, "expired".
    "exp true": lambda: _hand_made(claims=_claims(exp=True)),
    "exp false": lambda: _hand_made(claims=_claims(exp=False)),
    # Validly signed, and once a 500: a string of digits (python-jose lets it through) and a
    # number no float can hold.
    "exp a string of digits": lambda: _hand_made(claims=_claims(exp=str(int(time.time()) + 3600))),
    "exp 10**400": lambda: _hand_made(claims=_claims(exp=10**400)),
    "exp past the year 9999": lambda: _hand_made(claims=_claims(exp=253_402_300_800)),
    "an unknown critical header extension": lambda: _hand_made(
        header={"alg": "HS256", "typ": "JWT", "crit": ["http://evil.example/ignore-exp"]}
    ),
    "signature with == appended": lambda: make_token("alice") + "==",
    "signature with one = appended": lambda: make_token("alice") + "=",
    "nbf one hour ahead": lambda: make_token("alice", nbf=int(time.time()) + 3600),
    "nbf not a number": lambda: make_token("alice", nbf="soon"),
    "claims not an object": lambda: _hand_made(claims=["alice"]),
    "header not an object": lambda: (
        f"{_segment(['HS256'])}.{_segment(_claims())}.{_b64(b'x' * 32)}"
    ),
    "header not JSON": lambda: f"{_b64(b'{not json')}.{_segment(_claims())}.{_b64(b'x' * 32)}",
    "payload not JSON": lambda: ".".join(
        [_segment({"alg": "HS256"}), _b64(bytes([0xFF, 0xFE])), _b64(b"x" * 32)]
    ),
    "garbage base64": lambda: "!!!!.@@@@.####",
    "base64 padding inside": lambda: "eyJ=hbGc.eyJ==zdWI.c2ln==",
    "three dots": lambda: "...",
    "only dots": lambda: "." * 40,
    "empty segments around a signature": lambda: ".." + make_token("alice").rsplit(".", 1)[1],
    "one long segment of base64": lambda: _b64(b"\x00" * 600),
    "token of 16 KiB, signed with the secret": lambda: _padded_to(16 * KIB),
    "token just over the 8 KiB cap, signed with the secret": lambda: _padded_to(8 * KIB + 1),
}

# A few cases answered with ``token_expired`` rather than ``unauthorized``.
EXPIRED_TOKENS: dict[str, Callable[[], str]] = {
    "expired a second ago": lambda: make_token("alice", ttl=-1),
    "expired a year ago": lambda: make_token("alice", ttl=-365 * 24 * 3600),
    "expired, exp zero": lambda: _hand_made(claims=_claims(exp=0)),
}

CORPUS: dict[str, Callable[[], str]] = {**BAD_TOKENS, **NEW_BAD_TOKENS}


def _texts(record: logging.LogRecord) -> list[str]:
    """Everything a formatter could print of this record."""
    texts = [record.getMessage()]
    texts.extend(repr(value) for value in vars(record).values())
    texts.extend(str(value) for value in vars(record).values())
    return texts


def _assert_one_security_record_without(
    caplog: pytest.LogCaptureFixture, token: str, *, path: str = PATH, method: str = "POST"
) -> None:
    records = [record for record in caplog.records if record.name == SECURITY]
    assert len(records) == 1, [(r.name, r.getMessage()) for r in caplog.records]
    record = records[0]
    for attribute in ATTRIBUTES:
        assert hasattr(record, attribute), attribute
    assert getattr(record, "event", None) == "auth_failure"
    assert getattr(record, "status", None) == 401
    assert getattr(record, "method", None) == method
    assert getattr(record, "path", None) == path
    reason = getattr(record, "reason", None)
    assert isinstance(reason, str)
    assert reason
    assert len(reason) <= 300
    # The token, its signature, a long slice of it, or the secret: in no record of any logger.
    fragments = [SECRET]
    if len(token) >= 8:
        fragments.append(token)
    signature = token.rsplit(".", 1)[-1]
    if len(signature) >= 16:
        fragments.append(signature)
    if len(token) >= 200:
        fragments.append(token[100:164])
    for logged in caplog.records:
        for text in _texts(logged):
            for fragment in fragments:
                assert fragment not in text, (logged.name, fragment[:40])


async def _refused(
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    authorization: str | bytes,
    code: str,
) -> None:
    caplog.clear()
    caplog.set_level(logging.DEBUG)

    value = authorization if isinstance(authorization, bytes) else authorization.encode("ascii")
    response = await http.post(PATH, json={"title": "x"}, headers=[(b"Authorization", value)])

    assert_problem(response, 401, code)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="taskapi"')
    assert 'error="invalid_token"' in challenge
    token = (
        authorization.decode("latin-1") if isinstance(authorization, bytes) else authorization
    ).partition(" ")[2]
    assert token not in response.text or len(token) < 8
    assert token not in challenge or len(token) < 8
    _assert_one_security_record_without(caplog, token)


@pytest.mark.parametrize("name", list(CORPUS))
async def test_hostile_token_is_401_with_one_security_record_without_the_token(
    client: httpx.AsyncClient, rows: StoredTasks, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    await _refused(client, caplog, f"Bearer {CORPUS[name]()}", "unauthorized")

    assert await rows.count() == 0


@pytest.mark.parametrize("name", list(EXPIRED_TOKENS))
async def test_expired_token_is_401_token_expired_with_one_security_record(
    client: httpx.AsyncClient, rows: StoredTasks, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    await _refused(client, caplog, f"Bearer {EXPIRED_TOKENS[name]()}", "token_expired")

    assert await rows.count() == 0


@pytest.mark.parametrize(
    "raw",
    [
        "héllo.wörld.ünïcödé",
        "\u00e9" * 40,
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.\u00ff\u00fe\u00fd\u00fc\u00fb\u00fa\u00f9\u00f8",
    ],
    ids=["latin-1 letters", "accents only", "latin-1 signature"],
)
async def test_non_ascii_token_is_401_with_one_security_record(
    client: httpx.AsyncClient, rows: StoredTasks, caplog: pytest.LogCaptureFixture, raw: str
) -> None:
    # Sent as raw header bytes (latin-1, as HTTP/1.1 carries them); the app reads them back as-is.
    await _refused(client, caplog, b"Bearer " + raw.encode("latin-1"), "unauthorized")

    assert await rows.count() == 0


async def test_utf8_token_bytes_are_401_with_one_security_record(
    client: httpx.AsyncClient, rows: StoredTasks, caplog: pytest.LogCaptureFixture
) -> None:
    valid = make_token("alice")
    # A valid token with UTF-8 bytes spliced into its signature: no longer the signed text.
    raw = (valid[:-4] + "😀ü").encode("utf-8")

    await _refused(client, caplog, b"Bearer " + raw, "unauthorized")

    assert await rows.count() == 0


async def test_a_16_kib_token_is_refused_unread_and_not_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = _padded_to(16 * KIB)
    assert len(token) >= 16 * KIB
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "alice"  # honest but too big

    await _refused(client, caplog, f"Bearer {token}", "unauthorized")


async def test_a_100_kib_authorization_header_is_a_4xx_never_a_5xx(
    client: httpx.AsyncClient, rows: StoredTasks, caplog: pytest.LogCaptureFixture
) -> None:
    token = "A" * (100 * KIB)

    await _refused(client, caplog, f"Bearer {token}", "unauthorized")

    assert await rows.count() == 0


AUD_ISS: Final = {"jwt_audience": "taskapi", "jwt_issuer": "https://auth.example"}
GOOD_CLAIMS: Final = {"aud": "taskapi", "iss": "https://auth.example"}


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": None},
        {"iss": None},
        {"aud": "other"},
        {"aud": ["other", "more"]},
        {"aud": ""},
        {"aud": 5},
        {"iss": "https://evil.example"},
        {"iss": ""},
        {"iss": ["https://auth.example"]},
        {"aud": "taskapi ", "iss": "https://auth.example"},
    ],
    ids=repr,
)
async def test_wrong_audience_or_issuer_is_401_with_one_security_record(
    app_factory: Callable[..., FastAPI],
    rows: StoredTasks,
    caplog: pytest.LogCaptureFixture,
    claims: dict[str, Any],
) -> None:
    merged = _claims(**{**GOOD_CLAIMS, **claims})
    token = _hand_made(claims={key: value for key, value in merged.items() if value is not None})
    async with custom_client(app_factory, **AUD_ISS) as http:
        good = make_token("alice", aud="taskapi", iss="https://auth.example")
        accepted = await http.get(PATH, headers={"Authorization": f"Bearer {good}"})
        await _refused(http, caplog, f"Bearer {token}", "unauthorized")

    assert accepted.status_code == 200  # the same app takes the right claims
    assert await rows.count() == 0


def test_the_corpus_is_made_of_distinct_tokens() -> None:
    tokens = [make() for make in CORPUS.values()]

    assert len(set(tokens)) == len(tokens)
    assert len(NONE_CASINGS) == 16
