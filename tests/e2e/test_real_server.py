"""``taskapi serve`` as a real process: uvicorn, the CLI and the wiring, over a real socket."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.process import taskapi_serve
from tests.tokens import SECRET, bearer


@pytest.fixture
def server_and_log(
    database_url: str, tmp_path: Path, clean_tasks: None
) -> Iterator[tuple[str, Path]]:
    with taskapi_serve(
        tmp_path, DATABASE_URL=database_url, JWT_SECRET=SECRET, LOG_LEVEL="INFO"
    ) as (base, _):
        yield base, tmp_path / "server.log"


@pytest.fixture
def server(server_and_log: tuple[str, Path]) -> str:
    return server_and_log[0]


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


def test_every_request_is_one_json_access_line(server_and_log: tuple[str, Path]) -> None:
    base, log = server_and_log
    with httpx.Client(base_url=base, timeout=10) as http:
        for n in range(3):
            headers = {**bearer(), "X-Request-ID": f"once-{n}"}
            assert http.get("/api/alice/tasks", headers=headers).status_code == 200
        assert http.get("/docs").status_code == 200
        assert http.get("/openapi.json").status_code == 200
    # A request's line is written once its response is sent: the last may lag the client.
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith("{")]
        access = [line for line in lines if line.get("message") == "request"]
        access = [line for line in access if line["route"] != "/healthz"]  # start-up probes
        if len(access) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [line["request_id"] for line in access[:3]] == ["once-0", "once-1", "once-2"]
    assert {line["logger"] for line in access} == {"taskapi.access"}
    assert [line["route"] for line in access] == [
        *["/api/{user_id}/tasks"] * 3,
        "/docs",
        "/openapi.json",
    ]


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


def test_head_answers_the_get_headers_and_no_body(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        created = http.post("/api/alice/tasks", json={"title": "served"}, headers=bearer())
        got = http.get(f"/api/alice/tasks/{created.json()['id']}", headers=bearer())
    url = httpx.URL(server)
    token = bearer()["Authorization"]
    request = (
        f"HEAD /api/alice/tasks/{created.json()['id']} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: {token}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((url.host, url.port or 80), timeout=10) as sock:
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    fields = (line.decode().split(": ", 1) for line in head.split(b"\r\n")[1:])
    headers = {name.lower(): value for name, value in fields}
    assert headers["content-length"] == got.headers["content-length"]
    assert headers["etag"] == got.headers["etag"]
    assert headers["content-type"] == got.headers["content-type"]
    assert rest == b""  # the length the GET would send, and not one byte of it
