"""Rate limits: per user once authenticated, per address for failed authentications (429)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client.parser import text_string_to_metric_families

from adapters.http.dependencies import AuthenticatedFirst
from adapters.http.rate_limits import RateLimited, TokenBuckets
from tests.e2e.helpers import assert_problem
from tests.fakes import FakeTaskRepository
from tests.tokens import bearer, make_token


def client_of(app: FastAPI, address: str = "192.0.2.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_a_user_over_the_limit_gets_429_with_the_rate_limit_headers(
    app_factory: Callable[..., FastAPI], repository: FakeTaskRepository
) -> None:
    app = app_factory(rate_limit_user_rps=1, rate_limit_user_burst=3)
    async with client_of(app) as client:
        created = [
            await client.post("/api/alice/tasks", json={"title": "t"}, headers=bearer("alice"))
            for _ in range(4)
        ]
        others = await client.get("/api/bob/tasks", headers=bearer("bob"))
        metrics = await client.get("/metrics")
    assert [response.status_code for response in created] == [201, 201, 201, 429]
    limited = created[-1]
    assert_problem(limited, 429, "rate_limited")
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["ratelimit-policy"] == '"user";q=3;w=3'
    assert limited.headers["ratelimit"] == '"user";r=0;t=1'
    assert len(repository.tasks) == 3  # the refused one created nothing
    assert others.status_code == 200  # another user has a bucket of their own
    assert limited_count(metrics.text, "rate_user") == 1


async def test_failed_authentications_are_limited_by_address_not_the_valid_users_there(
    app_factory: Callable[..., FastAPI],
) -> None:
    app = app_factory(rate_limit_ip_rps=0.5, rate_limit_ip_burst=2)
    bad = {"Authorization": f"Bearer {make_token('alice', secret='x' * 40)}"}
    async with client_of(app, "198.51.100.7") as attacker:
        statuses = [
            (await attacker.get("/api/alice/tasks", headers=bad)).status_code for _ in range(4)
        ]
        limited = await attacker.get("/api/alice/tasks", headers=bad)
        valid_there = await attacker.get("/api/alice/tasks", headers=bearer("alice"))
    async with client_of(app, "203.0.113.9") as elsewhere:
        refused_elsewhere = await elsewhere.get("/api/alice/tasks", headers=bad)
        metrics = await elsewhere.get("/metrics")
    assert statuses == [401, 401, 429, 429]
    assert_problem(limited, 429, "rate_limited")
    assert limited.headers["retry-after"] == "2"
    assert limited.headers["ratelimit-policy"] == '"address";q=2;w=4'
    assert valid_there.status_code == 200
    assert_problem(refused_elsewhere, 401, "unauthorized")
    assert limited_count(metrics.text, "rate_address") == 3
    assert limited_count(metrics.text, "rate_user") == 0


def limited_count(exposition: str, limit: str) -> float:
    """``taskapi_http_requests_limited_total{limit=...}`` in a /metrics page (0 when absent)."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "taskapi_http_requests_limited_total" and sample.labels == {
                "limit": limit
            }:
                return sample.value
    return 0


class WatchedBody:
    """A request body that records how many of its chunks the service asked for."""

    def __init__(self) -> None:
        self.chunks_read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in (b'{"title"', b': "t"}'):
            self.chunks_read += 1
            yield chunk


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/alice/tasks"), ("PUT", "/api/alice/tasks/1")],
)
async def test_a_limited_or_unknown_callers_body_is_never_read(
    app_factory: Callable[..., FastAPI], repository: FakeTaskRepository, method: str, path: str
) -> None:
    app = app_factory(
        rate_limit_user_rps=0.001,
        rate_limit_user_burst=1,
        rate_limit_ip_rps=0.001,
        rate_limit_ip_burst=1,
    )
    bad = {"Authorization": f"Bearer {make_token('alice', secret='x' * 40)}"}
    json = {"Content-Type": "application/json"}
    async with client_of(app) as client:
        spent = await client.post("/api/alice/tasks", json={"title": "t"}, headers=bearer("alice"))
        unknown = await client.post("/api/alice/tasks", json={"title": "t"}, headers=bad)
        bodies = {case: WatchedBody() for case in ("user limit", "address limit", "no token")}
        answers = {
            "user limit": await client.request(
                method, path, content=bodies["user limit"], headers=bearer("alice") | json
            ),
            "address limit": await client.request(
                method, path, content=bodies["address limit"], headers=bad | json
            ),
        }
    async with client_of(app, "203.0.113.9") as elsewhere:
        answers["no token"] = await elsewhere.request(
            method, path, content=bodies["no token"], headers=json
        )
    assert (spent.status_code, unknown.status_code) == (201, 401)
    assert_problem(answers["user limit"], 429, "rate_limited")
    assert_problem(answers["address limit"], 429, "rate_limited")
    assert_problem(answers["no token"], 401, "unauthorized")
    assert {case: body.chunks_read for case, body in bodies.items()} == dict.fromkeys(bodies, 0)
    assert len(repository.tasks) == 1


def test_every_api_route_proves_its_caller_before_its_body(
    app_factory: Callable[..., FastAPI],
) -> None:
    api = [
        route
        for route in app_factory().state.api_routes
        if isinstance(route, APIRoute) and route.path.startswith("/api/")
    ]
    assert {route.path for route in api if route.body_field is not None} == {
        "/api/{user_id}/tasks",
        "/api/{user_id}/tasks/{task_id}",
    }
    assert all(isinstance(route, AuthenticatedFirst) for route in api)


async def test_a_body_is_read_once_the_caller_is_proven_and_counted_once(
    app_factory: Callable[..., FastAPI], repository: FakeTaskRepository
) -> None:
    app = app_factory(rate_limit_user_rps=0.001, rate_limit_user_burst=2)
    headers = bearer("alice") | {"Content-Type": "application/json"}
    async with client_of(app) as client:
        body = WatchedBody()
        created = await client.post("/api/alice/tasks", content=body, headers=headers)
        second = await client.post("/api/alice/tasks", json={"title": "u"}, headers=headers)
        third = await client.post("/api/alice/tasks", json={"title": "v"}, headers=headers)
    assert body.chunks_read == 2
    assert (created.status_code, created.json()["title"]) == (201, "t")
    # Two of a burst of two: proving the caller before the body did not take a second token.
    assert [second.status_code, third.status_code] == [201, 429]
    assert sorted(task.title for task in repository.tasks.values()) == ["t", "u"]


@pytest.mark.parametrize(
    "off", [{"rate_limit_user_rps": 0, "rate_limit_user_burst": 1}, {"rate_limit_user_burst": 0}]
)
async def test_zero_turns_a_limit_off(
    app_factory: Callable[..., FastAPI], off: dict[str, float]
) -> None:
    app = app_factory(**off)
    async with client_of(app) as client:
        statuses = {
            (await client.get("/api/alice/tasks", headers=bearer("alice"))).status_code
            for _ in range(20)
        }
    assert statuses == {200}


@pytest.mark.parametrize("off", [{"rate_limit_ip_rps": 0}, {"rate_limit_ip_burst": 0}])
async def test_zero_turns_the_address_limit_off(
    app_factory: Callable[..., FastAPI], off: dict[str, float]
) -> None:
    app = app_factory(**({"rate_limit_ip_rps": 1, "rate_limit_ip_burst": 1} | off))
    async with client_of(app) as client:
        statuses = {(await client.get("/api/alice/tasks")).status_code for _ in range(20)}
    assert statuses == {401}


async def test_the_probes_are_not_limited(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory(rate_limit_ip_rps=0.1, rate_limit_ip_burst=1)
    async with client_of(app) as client:
        statuses = {(await client.get("/healthz")).status_code for _ in range(10)}
    assert statuses == {200}


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = [0.0]
    buckets = TokenBuckets("user", rate=2, burst=4, now=lambda: clock[0])
    for _ in range(4):
        buckets.take("alice")
    with pytest.raises(RateLimited):
        buckets.take("alice")
    clock[0] = 0.5  # one token back
    buckets.take("alice")
    with pytest.raises(RateLimited):
        buckets.take("alice")
    clock[0] = 100.0  # refilled, but never beyond the burst
    for _ in range(4):
        buckets.take("alice")
    with pytest.raises(RateLimited):
        buckets.take("alice")
