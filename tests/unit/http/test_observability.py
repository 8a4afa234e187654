"""Request ids, the access log, /metrics, /healthz and /readyz, and the last-resort 500."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace

import anyio
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.middleware import RequestEdgeMiddleware
from adapters.http.observability import HttpMetrics
from application.errors import StorageUnavailable
from bootstrap.container import Container
from domain.task import Task
from tests.e2e.helpers import LEAKS, assert_problem, create, custom_client
from tests.fakes import FakeHealthProbe, FakeTaskRepository
from tests.tokens import bearer


async def test_one_access_log_line_per_request_with_route_status_duration_and_user(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    task = await create(client)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="taskapi.access"):
        response = await client.get(
            f"/api/alice/tasks/{task['id']}", headers={**bearer(), "X-Request-ID": "trace-1"}
        )
    assert response.status_code == 200
    lines = [r for r in caplog.records if r.name == "taskapi.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line.__dict__["method"] == "GET"
    assert line.__dict__["route"] == "/api/{user_id}/tasks/{task_id}"
    assert line.__dict__["status"] == 200
    assert line.__dict__["user"] == "alice"
    assert 0 < line.__dict__["duration_ms"] < 10_000
    assert line.__dict__["request_id"] == "trace-1"


async def test_every_log_line_of_a_request_carries_its_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = await client.get("/api/alice/tasks", headers={"X-Request-ID": "trace-2"})
    assert response.status_code == 401
    mine = [r for r in caplog.records if r.name.startswith("taskapi")]
    assert {r.name for r in mine} >= {"taskapi.access", "taskapi.security"}
    assert {r.__dict__["request_id"] for r in mine} == {"trace-2"}


async def test_metrics_count_requests_by_route_template_and_status(
    app_factory: Callable[..., FastAPI],
) -> None:
    # An app of its own: the counters start at zero.
    async with custom_client(app_factory) as client:
        task = await create(client)
        await client.get(f"/api/alice/tasks/{task['id']}", headers=bearer())
        await client.get("/api/alice/tasks/999999", headers=bearer())
        await client.get("/no/such/path/12345")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = 'route="/api/{user_id}/tasks/{task_id}"'
    assert re.search(
        rf'taskapi_http_requests_total{{method="GET",{route},status="200"}} 1\.0', text
    )
    assert re.search(
        rf'taskapi_http_requests_total{{method="GET",{route},status="404"}} 1\.0', text
    )
    assert 'route="<unmatched>",status="404"' in text
    assert "/no/such/path" not in text  # raw paths never become labels
    assert (
        f'taskapi_http_request_duration_seconds_bucket{{le="0.005",method="GET",{route}}}' in text
    )


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200


async def test_readyz_is_503_with_retry_after_when_the_probe_fails(
    container: Container, client: httpx.AsyncClient
) -> None:
    probe = container.readiness()
    assert isinstance(probe, FakeHealthProbe)
    probe.ready = False

    ready = await client.get("/readyz")
    alive = await client.get("/healthz")

    assert_problem(ready, 503, "database_unavailable")
    assert ready.headers["retry-after"].isdigit()
    assert alive.status_code == 200


async def test_a_storage_outage_is_503_with_retry_after(
    repository: FakeTaskRepository, client: httpx.AsyncClient
) -> None:
    async def unavailable(*args: object, **kwargs: object) -> None:
        raise StorageUnavailable("connection refused")

    repository.list = unavailable  # type: ignore[method-assign,assignment]

    response = await client.get("/api/alice/tasks", headers=bearer())

    assert_problem(response, 503, "database_unavailable")
    assert response.headers["retry-after"].isdigit()
    assert "connection refused" not in response.text


async def test_a_change_that_always_loses_the_save_race_is_503_write_contention(
    repository: FakeTaskRepository, client: httpx.AsyncClient
) -> None:
    created = await client.post("/api/alice/tasks", json={"title": "t"}, headers=bearer())
    task_id = created.json()["id"]

    async def always_overtaken(task: Task, *, expected_version: int) -> Task | None:
        current = repository.tasks[task.id]
        repository.tasks[task.id] = replace(current, version=current.version + 1)
        return None

    repository.save = always_overtaken  # type: ignore[method-assign]

    response = await client.put(
        f"/api/alice/tasks/{task_id}", json={"title": "mine"}, headers=bearer()
    )

    assert_problem(response, 503, "write_contention")
    assert response.headers["retry-after"].isdigit()
    assert repository.tasks[task_id].title == "t"


async def test_a_bug_is_a_problem_500_with_the_request_id_and_no_trace(
    container: Container, client: httpx.AsyncClient
) -> None:
    class Broken:
        async def execute(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("SELECT secret FROM internals")

    with container.get_task.override(Broken()):
        response = await client.get(
            "/api/alice/tasks/1", headers={**bearer(), "X-Request-ID": "trace-500"}
        )

    body = assert_problem(response, 500, "internal_error")
    assert response.headers["x-request-id"] == "trace-500"
    assert body["request_id"] == "trace-500"
    for leak in (*LEAKS, "secret", "RuntimeError"):
        assert leak not in response.text


ORIGIN = "https://app.example.com"


async def test_a_bug_s_500_carries_cors_headers_so_a_browser_can_read_it(
    app_factory: Callable[..., FastAPI],
) -> None:
    class Broken:
        async def execute(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("boom")

    app = app_factory(cors_origins=(ORIGIN,))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        with app.state.container.get_task.override(Broken()):
            response = await http.get("/api/alice/tasks/1", headers={**bearer(), "Origin": ORIGIN})

    assert_problem(response, 500, "internal_error")
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize(("origin", "method"), [("https://evil.example", "GET"), (ORIGIN, "TRACE")])
async def test_a_refused_preflight_is_a_problem_like_every_error(
    app_factory: Callable[..., FastAPI], origin: str, method: str
) -> None:
    async with custom_client(app_factory, cors_origins=(ORIGIN,)) as http:
        refused = await http.options(
            "/api/alice/tasks", headers={"Origin": origin, "Access-Control-Request-Method": method}
        )
        allowed = await http.options(
            "/api/alice/tasks", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
        )

    body = assert_problem(refused, 400, "bad_request")
    assert body["detail"].startswith("Disallowed CORS")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN


def _streams_then_raises(error: Exception) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        raise error

    return app


async def _call(app: ASGIApp) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/alice/events", "headers": []}
    edge = RequestEdgeMiddleware(app, metrics=HttpMetrics(CollectorRegistry()))
    await edge(scope, receive, send)
    return sent


async def test_a_client_leaving_an_event_stream_is_not_an_error() -> None:
    # FastAPI's keep-alive task raises this group once the client has gone (fastapi#15725);
    # uvicorn would log it as "Exception in ASGI application".
    gone = ExceptionGroup("stream", [anyio.BrokenResourceError(), anyio.ClosedResourceError()])
    sent = await _call(_streams_then_raises(gone))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


@pytest.mark.parametrize(
    "error",
    [RuntimeError("a bug"), ExceptionGroup("mixed", [anyio.BrokenResourceError(), KeyError()])],
)
async def test_a_bug_after_the_response_started_still_reaches_the_server(error: Exception) -> None:
    with pytest.raises(type(error)):
        await _call(_streams_then_raises(error))


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
async def test_a_preflight_allows_every_method_the_api_answers(
    app_factory: Callable[..., FastAPI], method: str
) -> None:
    async with custom_client(app_factory, cors_origins=(ORIGIN,)) as http:
        allowed = await http.options(
            "/api/alice/tasks",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization",
            },
        )

    assert allowed.status_code == 200, allowed.text
    assert method in allowed.headers["access-control-allow-methods"]
