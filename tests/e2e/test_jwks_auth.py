"""The API with only a JWKS configured, as behind Better Auth's ``jwt()`` plugin (EdDSA)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI

from tests.e2e.helpers import assert_problem, assert_task_response, custom_client
from tests.jwks import BETTER_AUTH_URL, JwksServer, SigningKey, jwks
from tests.tokens import bearer


@pytest.fixture(scope="module")
def auth_key() -> SigningKey:
    return SigningKey.generate("EdDSA")


@pytest.fixture
def jwks_server(auth_key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer(jwks(auth_key)).start()
    yield server
    server.stop()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_better_auth_tokens_create_and_list_and_others_get_401(
    app_factory: Callable[..., FastAPI],
    clean_tasks: None,
    auth_key: SigningKey,
    jwks_server: JwksServer,
) -> None:
    overrides = {
        "jwt_secret": None,
        "jwt_jwks_url": jwks_server.url,
        "cursor_secret": "c" * 32,  # the test database's URL holds no password to derive it from
        "jwt_issuer": BETTER_AUTH_URL,
        "jwt_audience": BETTER_AUTH_URL,
    }
    async with custom_client(app_factory, **overrides) as http:
        assert jwks_server.requests == 0  # nothing fetched at start-up
        token = auth_key.better_auth_token("user_42")
        created = await http.post(
            "/api/user_42/tasks", json={"title": "from Better Auth"}, headers=_auth(token)
        )
        task = assert_task_response(created, 201, user="user_42")
        listed = await http.get("/api/user_42/tasks", headers=_auth(token))
        assert listed.status_code == 200, listed.text
        assert [item["id"] for item in listed.json()] == [task["id"]]
        assert jwks_server.requests == 1

        stranger = SigningKey.generate("EdDSA", kid=auth_key.kid).better_auth_token("user_42")
        refused = await http.get("/api/user_42/tasks", headers=_auth(stranger))
        assert_problem(refused, 401, "unauthorized")
        assert "invalid_token" in refused.headers["www-authenticate"]

        # With no JWT_SECRET, a shared-secret token is no credential at all.
        hs = await http.get("/api/user_42/tasks", headers=bearer("user_42"))
        assert_problem(hs, 401, "unauthorized")


async def test_an_unreachable_jwks_is_a_401_not_a_500(
    app_factory: Callable[..., FastAPI], clean_tasks: None, auth_key: SigningKey
) -> None:
    down = JwksServer(jwks(auth_key))
    url = down.url
    down.stop()  # never started: nothing listens on its port any more
    only_a_jwks = {"jwt_secret": None, "jwt_jwks_url": url, "cursor_secret": "c" * 32}
    async with custom_client(app_factory, **only_a_jwks) as http:
        response = await http.get("/api/alice/tasks", headers=_auth(auth_key.token("alice")))
        assert_problem(response, 401, "unauthorized")
