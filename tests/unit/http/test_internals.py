"""What operators may close: the docs and the OpenAPI document, and the metrics behind a token."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.e2e.helpers import assert_problem

TOKEN = "metrics-token-for-the-scraper-0123456789"


@pytest.fixture
async def client_with(
    app_factory: Callable[..., FastAPI],
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(**settings: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app_factory(**settings))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_docs_disabled_removes_the_docs_and_the_document(
    client_with: Callable[..., httpx.AsyncClient],
) -> None:
    client = client_with(docs_enabled=False)
    for path in (
        "/docs",
        "/openapi.json",
        "/redoc",
        "/docs/oauth2-redirect",
        "/docs/assets/swagger-ui-bundle.js",
    ):
        assert_problem(await client.get(path), 404, "not_found")
    assert (await client.get("/healthz")).status_code == 200


async def test_docs_are_served_by_default_with_their_own_assets(
    client_with: Callable[..., httpx.AsyncClient],
) -> None:
    client = client_with()
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "/openapi.json" in page.text
    # Nothing from elsewhere: no CDN script or style on the page where tokens are pasted.
    assert re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
    for url in re.findall(r"""(?:src|href)=["']([^"']+)""", page.text):
        assert url.startswith("/docs/assets/"), url
    assert "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        served = await client.get(f"/docs/assets/{asset}")
        assert served.status_code == 200, asset
        assert len(served.content) > 100
    assert (await client.get("/openapi.json")).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", f"Bearer {TOKEN}x", f"bearer{TOKEN}", TOKEN, f"Basic {TOKEN}", "Bearer "],
)
async def test_metrics_with_a_token_refuse_anyone_without_it(
    client_with: Callable[..., httpx.AsyncClient],
    authorization: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = client_with(metrics_token=TOKEN)
    headers = {} if authorization is None else {"Authorization": authorization}
    caplog.set_level(logging.INFO, logger="taskapi.security")
    response = await client.get("/metrics", headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "taskapi_http_requests" not in response.text
    # A security event like any refused request, which never holds the token.
    [event] = [r for r in caplog.records if r.name == "taskapi.security"]
    assert (getattr(event, "status", None), getattr(event, "path", None)) == (401, "/metrics")
    assert all(TOKEN not in repr(vars(r)) for r in caplog.records)


async def test_metrics_with_a_token_answer_the_scraper(
    client_with: Callable[..., httpx.AsyncClient],
) -> None:
    client = client_with(metrics_token=TOKEN)
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert "taskapi_http_requests" in response.text


async def test_metrics_are_public_without_a_token(
    client_with: Callable[..., httpx.AsyncClient],
) -> None:
    assert (await client_with().get("/metrics")).status_code == 200
