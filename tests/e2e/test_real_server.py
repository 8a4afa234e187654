"""``taskapi serve`` as a real process: uvicorn, the CLI and the wiring, over a real socket."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.process import TASKAPI, clean_env
from tests.tokens import SECRET, bearer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(database_url: str, tmp_path: Path, clean_tasks: None) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(  # noqa: S603  # our own console script
        [str(TASKAPI), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(DATABASE_URL=database_url, JWT_SECRET=SECRET),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)
        log.close()


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
