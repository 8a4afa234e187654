"""Authentication (401) and authorization (403): tokens, challenges, order of checks."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.e2e.helpers import assert_problem, assert_validation_problem, create, custom_client
from tests.tokens import OTHER_SECRET, SECRET, bearer, make_token
from tests.unit.http.conftest import StoredTasks

# Every endpoint, as (method, path template, JSON body or None); {user} and {id} are filled in.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/{user}/tasks", None),
    ("POST", "/api/{user}/tasks", {"title": "t"}),
    ("GET", "/api/{user}/tasks/{id}", None),
    ("PUT", "/api/{user}/tasks/{id}", {"title": "t"}),
    ("PATCH", "/api/{user}/tasks/{id}/complete", None),
    ("DELETE", "/api/{user}/tasks/{id}", None),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _ in ENDPOINTS]
TASK_ENDPOINTS = [endpoint for endpoint in ENDPOINTS if "{id}" in endpoint[1]]
TASK_ENDPOINT_IDS = [f"{method} {path}" for method, path, _ in TASK_ENDPOINTS]


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _tampered() -> str:
    header, _, signature = make_token("bob").split(".")
    now = int(time.time())
    return f"{header}.{_b64({'sub': 'alice', 'iat': now, 'exp': now + 3600})}.{signature}"


def _unsigned(alg: str) -> str:
    now = int(time.time())
    header = _b64({"alg": alg, "typ": "JWT"})
    return f"{header}.{_b64({'sub': 'alice', 'iat': now, 'exp': now + 3600})}."


# Tokens that must never authenticate "alice" (default settings: HS256 only, secret SECRET).
BAD_TOKENS: dict[str, Callable[[], str]] = {
    "alg none": lambda: make_token("alice", secret="", algorithm="none"),
    "alg NONE, hand-made": lambda: _unsigned("NONE"),
    "alg None, hand-made": lambda: _unsigned("None"),
    "HS256 header without signature": lambda: _unsigned("HS256"),
    "other secret": lambda: make_token("alice", secret=OTHER_SECRET),
    "HS512 (not accepted)": lambda: make_token("alice", algorithm="HS512"),
    "HS384 (not accepted)": lambda: make_token("alice", algorithm="HS384"),
    "payload tampered": _tampered,
    "no exp": lambda: make_token("alice", exp=None),
    "nbf in the future": lambda: make_token("alice", nbf=int(time.time()) + 600),
    "no sub": lambda: make_token(None),
    "empty sub": lambda: make_token(""),
    "sub is a number": lambda: make_token(123),
    "sub is a list": lambda: make_token(["alice"]),
    "sub is an object": lambda: make_token({"id": "alice"}),
    "sub is true": lambda: make_token(True),
    "sub with surrounding space": lambda: make_token(" alice"),
    "sub with control character": lambda: make_token("alice\x00"),
    "sub too long": lambda: make_token("a" * 256),
    "exp not a number": lambda: make_token("alice", exp="tomorrow"),
    "not a jwt": lambda: "not-a-jwt",
    "three garbage parts": lambda: "abc.def.ghi",
    "two parts": lambda: make_token("alice").rsplit(".", 1)[0],
    "four parts": lambda: make_token("alice") + ".extra",
    "huge token": lambda: "a" * 20000,
}


@pytest.mark.parametrize("name", list(BAD_TOKENS))
async def test_bad_token_is_401_invalid_token(
    client: httpx.AsyncClient, rows: StoredTasks, name: str
) -> None:
    token = BAD_TOKENS[name]()

    listed = await client.get("/api/alice/tasks", headers={"Authorization": f"Bearer {token}"})
    created = await client.post(
        "/api/alice/tasks", json={"title": "t"}, headers={"Authorization": f"Bearer {token}"}
    )

    for response in (listed, created):
        body = assert_problem(response, 401, "unauthorized")
        challenge = response.headers["www-authenticate"]
        assert challenge.lower().startswith("bearer")
        assert 'error="invalid_token"' in challenge
        assert token not in response.text
        assert "expired" not in body["detail"].lower()
    assert await rows.count() == 0


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
async def test_missing_token_is_401_without_error_code_on_every_endpoint(
    client: httpx.AsyncClient,
    rows: StoredTasks,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    task = await create(client, "alice", "kept")
    before = await rows.get(task["id"])

    response = await client.request(method, path.format(user="alice", id=task["id"]), json=body)

    assert_problem(response, 401, "unauthorized")
    challenge = response.headers["www-authenticate"]
    assert challenge.lower().startswith("bearer")
    assert "error=" not in challenge
    assert await rows.count() == 1
    assert await rows.get(task["id"]) == before


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
async def test_expired_token_is_401_token_expired_on_every_endpoint(
    client: httpx.AsyncClient,
    rows: StoredTasks,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    task = await create(client, "alice", "kept")
    before = await rows.get(task["id"])

    response = await client.request(
        method, path.format(user="alice", id=task["id"]), json=body, headers=bearer(ttl=-60)
    )

    problem = assert_problem(response, 401, "token_expired")
    assert "expired" in problem["detail"].lower()
    challenge = response.headers["www-authenticate"]
    assert challenge.lower().startswith("bearer")
    assert 'error="invalid_token"' in challenge
    assert await rows.count() == 1
    assert await rows.get(task["id"]) == before


@pytest.mark.parametrize(
    "header",
    [
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "Bearer",
        "Bearer ",
        "Token {token}",
        "{token}",
        "Bearer: {token}",
        "",
    ],
)
async def test_malformed_authorization_header_is_401(
    client: httpx.AsyncClient, rows: StoredTasks, header: str
) -> None:
    value = header.format(token=make_token("alice"))

    response = await client.post(
        "/api/alice/tasks", json={"title": "t"}, headers={"Authorization": value}
    )

    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert await rows.count() == 0


@pytest.mark.parametrize("first", ["bob", "alice"])
async def test_two_authorization_headers_are_401_whichever_comes_first(
    client: httpx.AsyncClient, rows: StoredTasks, first: str
) -> None:
    # A proxy that reads the other one would decide for another user than the service does.
    second = "alice" if first == "bob" else "bob"
    headers = [
        (b"authorization", bearer(first)["Authorization"].encode()),
        (b"authorization", bearer(second)["Authorization"].encode()),
    ]
    response = await client.post("/api/alice/tasks", json={"title": "t"}, headers=headers)

    assert_problem(response, 401, "unauthorized")
    assert await rows.count() == 0


@pytest.mark.parametrize("header", ["", "   ", "Bearer", "Bearer   ", "bearer"])
async def test_an_empty_authorization_header_is_no_token_at_all(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.get("/api/alice/tasks", headers={"Authorization": header})
    assert_problem(response, 401, "unauthorized")
    assert "error=" not in response.headers["www-authenticate"]


async def test_bearer_scheme_is_case_insensitive(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/alice/tasks", headers={"Authorization": f"bearer {make_token('alice')}"}
    )

    assert response.status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
async def test_path_naming_another_user_is_403_on_every_endpoint(
    client: httpx.AsyncClient,
    rows: StoredTasks,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    bobs = await create(client, "bob", "bob's")
    before = await rows.get(bobs["id"])

    response = await client.request(
        method, path.format(user="bob", id=bobs["id"]), json=body, headers=bearer("alice")
    )

    assert_problem(response, 403, "forbidden")
    assert "bob's" not in response.text
    assert response.headers.get("www-authenticate") is None
    assert await rows.count() == 1
    assert await rows.get(bobs["id"]) == before


@pytest.mark.parametrize(("method", "path", "body"), TASK_ENDPOINTS, ids=TASK_ENDPOINT_IDS)
async def test_another_users_task_under_my_path_is_404_on_every_endpoint(
    client: httpx.AsyncClient,
    rows: StoredTasks,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    bobs = await create(client, "bob", "bob's")
    before = await rows.get(bobs["id"])

    response = await client.request(
        method, path.format(user="alice", id=bobs["id"]), json=body, headers=bearer("alice")
    )

    assert_problem(response, 404, "task_not_found")
    assert await rows.get(bobs["id"]) == before
    assert await rows.count() == 1


async def test_token_signed_with_the_secret_works(client: httpx.AsyncClient) -> None:
    token = make_token("alice", secret=SECRET)

    response = await client.get("/api/alice/tasks", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200


async def test_unconfigured_aud_and_iss_are_ignored(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/alice/tasks", headers=bearer("alice", aud="some-service", iss="https://elsewhere")
    )

    assert response.status_code == 200


# --- Order of the checks: 401 → 403 → 400 → 404 ---------------------------------------------


async def test_order_401_before_403(client: httpx.AsyncClient, rows: StoredTasks) -> None:
    no_token = await client.post("/api/bob/tasks", json={"title": "x"})
    expired = await client.post("/api/bob/tasks", json={"title": "x"}, headers=bearer(ttl=-60))
    bad = await client.post(
        "/api/bob/tasks", json={"title": "x"}, headers=bearer(secret=OTHER_SECRET)
    )

    assert_problem(no_token, 401, "unauthorized")
    assert_problem(expired, 401, "token_expired")
    assert_problem(bad, 401, "unauthorized")
    assert await rows.count() == 0


async def test_order_401_before_400_and_404(client: httpx.AsyncClient) -> None:
    invalid_body = await client.post("/api/alice/tasks", content=b"{not json")
    invalid_id = await client.put("/api/alice/tasks/abc", json={"nope": 1})

    assert_problem(invalid_body, 401, "unauthorized")
    assert_problem(invalid_id, 401, "unauthorized")


async def test_order_403_before_400(client: httpx.AsyncClient, rows: StoredTasks) -> None:
    create_bad = await client.post("/api/bob/tasks", content=b"{not json", headers=bearer("alice"))
    update_bad = await client.put("/api/bob/tasks/1", json={"title": ""}, headers=bearer("alice"))
    list_bad = await client.get("/api/bob/tasks?limit=0", headers=bearer("alice"))

    assert_problem(create_bad, 403, "forbidden")
    assert_problem(update_bad, 403, "forbidden")
    assert_problem(list_bad, 403, "forbidden")
    assert await rows.count() == 0


UNPARSABLE_BODIES = {
    "invalid UTF-8": b'{"title": "\xff\xfe"}',
    "1 000 nested arrays": b"[" * 1000 + b"]" * 1000,
    "a 5000-digit number": b'{"title": ' + b"9" * 5000 + b"}",
    "truncated": b'{"title": "x"',
}


@pytest.mark.parametrize("raw", UNPARSABLE_BODIES.values(), ids=list(UNPARSABLE_BODIES))
async def test_order_401_and_403_before_an_unparsable_body(
    client: httpx.AsyncClient, rows: StoredTasks, raw: bytes
) -> None:
    json_type = {"Content-Type": "application/json"}

    anonymous = await client.post("/api/alice/tasks", content=raw, headers=json_type)
    someone_else = await client.post(
        "/api/bob/tasks", content=raw, headers={**bearer("alice"), **json_type}
    )
    mine = await client.post("/api/alice/tasks", content=raw, headers={**bearer(), **json_type})

    assert_problem(anonymous, 401, "unauthorized")
    assert_problem(someone_else, 403, "forbidden")
    assert_validation_problem(mine)
    assert await rows.count() == 0


async def test_order_403_before_404(client: httpx.AsyncClient) -> None:
    for task_id in ("abc", "0", "999999"):
        response = await client.get(f"/api/bob/tasks/{task_id}", headers=bearer("alice"))
        assert_problem(response, 403, "forbidden")


async def test_order_400_before_404(client: httpx.AsyncClient) -> None:
    missing = await client.put("/api/alice/tasks/999999", json={"title": ""}, headers=bearer())
    not_an_id = await client.put("/api/alice/tasks/abc", content=b"[1,", headers=bearer())
    foreign_id = (await create(client, "bob"))["id"]
    foreign = await client.put(
        f"/api/alice/tasks/{foreign_id}", json={"unknown": 1}, headers=bearer()
    )

    assert_validation_problem(missing, "title")
    assert_validation_problem(not_an_id)
    assert_validation_problem(foreign)


# --- Settings: audience, issuer, leeway, user id claim, algorithms ----------------------------


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"aud": "taskapi"}, 200),
        ({"aud": ["other", "taskapi"]}, 200),
        ({}, 401),
        ({"aud": "other"}, 401),
        ({"aud": ["other"]}, 401),
        ({"aud": "TASKAPI"}, 401),
    ],
)
async def test_configured_audience_is_required(
    app_factory: Callable[..., FastAPI], claims: dict[str, Any], status: int
) -> None:
    async with custom_client(app_factory, jwt_audience="taskapi") as http:
        response = await http.get("/api/alice/tasks", headers=bearer("alice", **claims))

    assert response.status_code == status
    if status == 401:
        assert_problem(response, 401, "unauthorized")
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"iss": "https://auth.example"}, 200),
        ({}, 401),
        ({"iss": "https://evil.example"}, 401),
        ({"iss": "https://auth.example/"}, 401),
    ],
)
async def test_configured_issuer_is_required(
    app_factory: Callable[..., FastAPI], claims: dict[str, Any], status: int
) -> None:
    async with custom_client(app_factory, jwt_issuer="https://auth.example") as http:
        response = await http.get("/api/alice/tasks", headers=bearer("alice", **claims))

    assert response.status_code == status
    if status == 401:
        assert_problem(response, 401, "unauthorized")


async def test_leeway_accepts_slightly_expired_and_not_yet_valid_tokens(
    app_factory: Callable[..., FastAPI],
) -> None:
    now = int(time.time())
    async with custom_client(app_factory, jwt_leeway_seconds=60) as http:
        just_expired = await http.get("/api/alice/tasks", headers=bearer(ttl=-20))
        nearly_valid = await http.get("/api/alice/tasks", headers=bearer(nbf=now + 20))
        long_expired = await http.get("/api/alice/tasks", headers=bearer(ttl=-300))
        far_future = await http.get("/api/alice/tasks", headers=bearer(nbf=now + 600))

    assert just_expired.status_code == 200
    assert nearly_valid.status_code == 200
    assert_problem(long_expired, 401, "token_expired")
    assert_problem(far_future, 401, "unauthorized")


async def test_no_leeway_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/alice/tasks", headers=bearer(ttl=-5))

    assert_problem(response, 401, "token_expired")


async def test_user_id_claim_setting(
    app_factory: Callable[..., FastAPI], rows: StoredTasks
) -> None:
    token = make_token("alice", uid="user-42")
    headers = {"Authorization": f"Bearer {token}"}
    async with custom_client(app_factory, jwt_user_id_claim="uid") as http:
        created = await http.post("/api/user-42/tasks", json={"title": "x"}, headers=headers)
        as_sub = await http.get("/api/alice/tasks", headers=headers)
        without_claim = await http.get("/api/alice/tasks", headers=bearer("alice"))
        empty_claim = await http.get("/api/alice/tasks", headers=bearer("alice", uid=""))
        number_claim = await http.get("/api/42/tasks", headers=bearer("alice", uid=42))

    assert created.status_code == 201
    assert created.json()["user_id"] == "user-42"
    assert await rows.count("user-42") == 1
    assert_problem(as_sub, 403, "forbidden")
    assert_problem(without_claim, 401, "unauthorized")
    assert_problem(empty_claim, 401, "unauthorized")
    assert_problem(number_claim, 401, "unauthorized")


async def test_algorithms_setting(app_factory: Callable[..., FastAPI]) -> None:
    async with custom_client(app_factory, jwt_algorithms=("HS512",)) as http:
        hs512 = await http.get("/api/alice/tasks", headers=bearer(algorithm="HS512"))
        hs256 = await http.get("/api/alice/tasks", headers=bearer(algorithm="HS256"))
        none = await http.get(
            "/api/alice/tasks",
            headers={"Authorization": f"Bearer {make_token(secret='', algorithm='none')}"},
        )

    assert hs512.status_code == 200
    assert_problem(hs256, 401, "unauthorized")
    assert_problem(none, 401, "unauthorized")
