"""Row-level security seen from HTTP: a login role that may not take the API role.

The API runs every statement as ``taskapi_app``. A deployment whose login role was not granted it
(an API on its own login role, without ``GRANT taskapi_app TO …``) cannot serve anything: that is
a 503 ``database_unavailable`` and a not-ready ``/readyz``, never a 500, and it heals as soon as
the grant is made, without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.row_security import API_ROLE
from tests.e2e.helpers import assert_problem
from tests.tokens import bearer


async def test_a_login_role_without_the_api_role_gets_503_until_granted(
    app_factory: Callable[..., FastAPI],
    engine: AsyncEngine,
    outsider: tuple[str, str],
    clean_tasks: None,
) -> None:
    name, url = outsider
    application = app_factory(database_url=url)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            listed = await http.get("/api/alice/tasks", headers=bearer("alice"))
            assert_problem(listed, 503, "database_unavailable")
            assert listed.headers["retry-after"] == "2"
            created = await http.post(
                "/api/alice/tasks", json={"title": "nowhere"}, headers=bearer("alice")
            )
            assert_problem(created, 503, "database_unavailable")
            assert (await http.get("/readyz")).status_code == 503

            async with engine.begin() as connection:
                await connection.execute(text(f"GRANT {API_ROLE} TO {name}"))

            # /readyz answers from a check at most a second old.
            deadline = asyncio.get_running_loop().time() + 3
            while (await http.get("/readyz")).status_code != 200:
                assert asyncio.get_running_loop().time() < deadline, "never ready again"
                await asyncio.sleep(0.1)
            created = await http.post(
                "/api/alice/tasks", json={"title": "somewhere"}, headers=bearer("alice")
            )
            assert created.status_code == 201
            listed = await http.get("/api/alice/tasks", headers=bearer("alice"))
            assert [task["title"] for task in listed.json()] == ["somewhere"]
    async with engine.connect() as connection:
        stored = (await connection.execute(text("SELECT user_id, title FROM tasks"))).all()
    assert [tuple(row) for row in stored] == [("alice", "somewhere")]
