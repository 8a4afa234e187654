"""Readiness and 503s when the database does not answer (the rest: tests/unit/http)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from tests.e2e.helpers import assert_problem, custom_client
from tests.tokens import bearer


async def test_readyz_is_503_quickly_when_the_database_does_not_answer(
    app_factory: Callable[..., FastAPI],
) -> None:
    dead = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
    async with custom_client(app_factory, database_url=dead) as http:
        started = time.monotonic()
        ready = await http.get("/readyz")
        assert time.monotonic() - started < 3
        assert_problem(ready, 503, "database_unavailable")
        listed = await http.get("/api/alice/tasks", headers=bearer())
        assert_problem(listed, 503, "database_unavailable")
        assert listed.headers["retry-after"].isdigit()
        assert time.monotonic() - started < 6
        assert (await http.get("/healthz")).status_code == 200


async def test_metrics_show_the_pool_in_use(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")

    assert response.status_code == 200
    for gauge in ("open", "checked_out", "idle", "max"):
        assert f"taskapi_db_pool_{gauge} " in response.text
