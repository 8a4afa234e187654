"""Rotating JWT_SECRET logs nobody out (JWT_PREVIOUS_SECRETS), page cursors survive it, and sync
tokens survive a rotation of CURSOR_SECRET while the old one is listed (CURSOR_PREVIOUS_SECRETS)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from bootstrap.settings import ConfigError
from tests.e2e.helpers import assert_problem
from tests.tokens import OTHER_SECRET, SECRET, make_token
from tests.unit.http.conftest import unit_settings

NEW_SECRET = "the-new-secret-after-rotation-0123456789abcdef"
CURSOR_SECRET = "a-cursor-secret-kept-across-rotations-0123456789"


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def bearer_signed_with(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('alice', secret=secret)}"}


async def test_tokens_signed_with_a_previous_secret_still_verify(
    app_factory: Callable[..., FastAPI],
) -> None:
    app = app_factory(jwt_secret=NEW_SECRET, jwt_previous_secrets=SECRET)
    async with client_of(app) as client:
        for secret in (NEW_SECRET, SECRET):
            response = await client.get("/api/alice/tasks", headers=bearer_signed_with(secret))
            assert response.status_code == 200, secret
        refused = await client.get("/api/alice/tasks", headers=bearer_signed_with(OTHER_SECRET))
        assert_problem(refused, 401, "unauthorized")


async def test_without_it_a_token_of_the_old_secret_is_refused(
    app_factory: Callable[..., FastAPI],
) -> None:
    async with client_of(app_factory(jwt_secret=NEW_SECRET)) as client:
        response = await client.get("/api/alice/tasks", headers=bearer_signed_with(SECRET))
        assert_problem(response, 401, "unauthorized")


async def test_several_previous_secrets_are_a_comma_list(
    app_factory: Callable[..., FastAPI],
) -> None:
    app = app_factory(jwt_secret=NEW_SECRET, jwt_previous_secrets=f"{SECRET}, {OTHER_SECRET}")
    async with client_of(app) as client:
        for secret in (SECRET, OTHER_SECRET):
            response = await client.get("/api/alice/tasks", headers=bearer_signed_with(secret))
            assert response.status_code == 200, secret


def test_a_short_previous_secret_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        unit_settings(jwt_previous_secrets=f"{SECRET},short")


def test_previous_secrets_without_a_current_one_are_refused() -> None:
    settings = unit_settings(jwt_secret=None, jwt_previous_secrets=SECRET, jwt_jwks_url=None)
    with pytest.raises(ConfigError, match="JWT_PREVIOUS_SECRETS"):
        settings.token_verification()


async def test_a_page_cursor_survives_a_rotation_of_the_jwt_secret(
    app_factory: Callable[..., FastAPI],
) -> None:
    before = app_factory(jwt_secret=SECRET, cursor_secret=CURSOR_SECRET)
    async with client_of(before) as client:
        for title in ("one", "two", "three"):
            created = await client.post(
                "/api/alice/tasks", json={"title": title}, headers=bearer_signed_with(SECRET)
            )
            assert created.status_code == 201
        first = await client.get("/api/alice/tasks?limit=2", headers=bearer_signed_with(SECRET))
    next_page = first.headers["link"].split(";")[0].strip("<>")

    after = app_factory(
        jwt_secret=NEW_SECRET, jwt_previous_secrets=SECRET, cursor_secret=CURSOR_SECRET
    )
    async with client_of(after) as client:
        second = await client.get(next_page, headers=bearer_signed_with(NEW_SECRET))
    assert second.status_code == 200
    assert [task["title"] for task in second.json()] == ["three"]


async def test_a_sync_token_survives_a_rotation_of_the_cursor_secret_while_it_is_listed(
    app_factory: Callable[..., FastAPI],
) -> None:
    headers = bearer_signed_with(SECRET)
    before = app_factory(jwt_secret=SECRET, cursor_secret=CURSOR_SECRET)
    async with client_of(before) as client:
        await client.post("/api/alice/tasks", json={"title": "one"}, headers=headers)
        synced = await client.get("/api/alice/tasks/changes", headers=headers)
    since = {"since": synced.json()["next"]}

    new_cursor_secret = "the-cursor-secret-after-rotation-0123456789abcdef"
    rotated = app_factory(
        jwt_secret=SECRET,
        cursor_secret=new_cursor_secret,
        cursor_previous_secrets=CURSOR_SECRET,
    )
    async with client_of(rotated) as client:
        await client.post("/api/alice/tasks", json={"title": "two"}, headers=headers)
        resumed = await client.get("/api/alice/tasks/changes", params=since, headers=headers)
    assert resumed.status_code == 200
    assert [change["task"]["title"] for change in resumed.json()["changes"]] == ["two"]

    dropped = app_factory(jwt_secret=SECRET, cursor_secret=new_cursor_secret)
    async with client_of(dropped) as client:
        refused = await client.get("/api/alice/tasks/changes", params=since, headers=headers)
    assert assert_problem(refused, 400)["errors"][0]["field"] == "since"
