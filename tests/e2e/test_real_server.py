"""``taskapi serve`` as a real process: uvicorn, the CLI and the wiring, over a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.process import taskapi_serve
from tests.tokens import SECRET, bearer


@pytest.fixture
def server(database_url: str, tmp_path: Path, clean_tasks: None) -> Iterator[str]:
    with taskapi_serve(tmp_path, DATABASE_URL=database_url, JWT_SECRET=SECRET) as (base, _):
        yield base


def test_the_served_api_works_end_to_end(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        created = http.post("/api/alice/tasks", json={"title": "served"}, headers=bearer())
        assert created.status_code == 201
        assert created.headers["location"] == f"/api/alice/tasks/{created.json()['id']}"
        listed = http.get("/api/alice/tasks", headers=bearer())
        assert [task["title"] for task in listed.json()] == ["served"]
        assert http.get("/readyz").status_code == 200
        assert "server" not in created.headers  # no banner for scanners


def test_the_served_api_refuses_an_oversized_body(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        response = http.post(
            "/api/alice/tasks",
            content=b'{"title": "' + b"x" * 70_000 + b'"}',
            headers={**bearer(), "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"


def test_the_served_api_refuses_a_streamed_oversized_body(server: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    with httpx.Client(base_url=server, timeout=10) as http:
        response = http.post(
            "/api/alice/tasks",
            content=chunks(),
            headers={**bearer(), "Content-Type": "application/json"},
        )
        assert response.status_code == 413


def test_several_workers_serve_and_log_json(
    database_url: str, tmp_path: Path, clean_tasks: None
) -> None:
    with (
        taskapi_serve(
            tmp_path, args=("--workers", "2"), DATABASE_URL=database_url, JWT_SECRET=SECRET
        ) as (base, _),
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        for _ in range(6):
            assert http.get("/api/alice/tasks", headers=bearer()).status_code == 200
    lines = [
        json.loads(line)
        for line in (tmp_path / "server.log").read_text().splitlines()
        if line.startswith("{")
    ]
    access = [line for line in lines if line.get("logger") == "taskapi.access"]
    assert len(access) >= 6  # every worker logs its requests, as JSON
    assert {line["route"] for line in access} >= {"/api/{user_id}/tasks"}


@pytest.mark.parametrize(
    ("trusted", "client"), [("127.0.0.1", "203.0.113.7"), ("10.9.8.7", "127.0.0.1")]
)
def test_the_client_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy(
    database_url: str, tmp_path: Path, clean_tasks: None, trusted: str, client: str
) -> None:
    with taskapi_serve(
        tmp_path,
        DATABASE_URL=database_url,
        JWT_SECRET=SECRET,
        FORWARDED_ALLOW_IPS=trusted,
        LOG_LEVEL="INFO",
    ) as (base, _):
        response = httpx.get(
            f"{base}/api/alice/tasks",
            headers={"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "forwarded-1"},
            timeout=10,
        )
        assert response.status_code == 401
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    logged = [line for line in lines if line.get("request_id") == "forwarded-1"]
    assert {line["message"] for line in logged} >= {"request", "request refused"}
    assert {line["client"] for line in logged} == {client}
