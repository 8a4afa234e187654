"""The compose stack as deployed: postgres, PgBouncer (transaction mode), migrate, api.

Brought up from the built images under a project name of its own, driven through the published
port, and always torn down with its network and volume.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.compose import compose_command
from tests.containers.conftest import docker
from tests.process import free_port
from tests.tokens import SECRET, bearer

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Stack:
    project: str
    base_url: str
    env: dict[str, str]

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        command = compose_command()
        assert command is not None, "no compose CLI (make compose installs Debian's)"
        result = subprocess.run(  # noqa: S603  # the compose CLI with the tests' own arguments
            [*command, "--project-name", self.project, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, (
            f"compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        )
        return result

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def wait_healthy(self, service: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            inspected = docker(
                "inspect", "--format", "{{.State.Health.Status}}", self.container(service)
            )
            if inspected.stdout.strip() == "healthy":
                return
            assert time.monotonic() < deadline, self.compose("logs", "--tail", "50", service).stdout
            time.sleep(0.5)

    def sql(self, query: str) -> list[str]:
        """Rows as the tables' owner sees them, through psql inside the postgres container."""
        out = self.compose(
            "exec", "-T", "postgres", "psql", "-U", "taskapi", "-d", "taskapi", "-Atc", query
        )
        return out.stdout.splitlines()


@pytest.fixture(scope="module")
def stack(images: dict[str, str]) -> Iterator[Stack]:
    assert compose_command() is not None, "no compose CLI (make compose installs Debian's)"
    env = {
        **os.environ,  # DOCKER_HOST, DOCKER_CONTEXT, HOME: the engine and plugins docker() uses
        "JWT_SECRET": SECRET,
        "TASKAPI_PORT": str(free_port()),
        **images,
    }
    # containers/stage.sh cleans up after a crash by this prefix: its run's id, then our own.
    project = f"taskapi-test-{os.environ.get('TASKAPI_TEST_RUN', 'manual')}-{uuid.uuid4().hex[:8]}"
    started = Stack(project, f"http://127.0.0.1:{env['TASKAPI_PORT']}", env)
    try:
        started.compose("up", "--detach", "--no-build")
        started.wait_healthy("api")
        yield started
    finally:
        started.compose("down", "--volumes", "--remove-orphans", "--timeout", "5")


def test_the_stack_serves_tasks_through_pgbouncer_and_keeps_them_across_an_api_restart(
    stack: Stack,
) -> None:
    # The one-shot migration ran from the same image and succeeded.
    migrate = stack.container("migrate")
    assert docker("inspect", "--format", "{{.State.ExitCode}}", migrate).stdout.strip() == "0"

    with httpx.Client(base_url=stack.base_url, timeout=10, headers=bearer("alice")) as http:
        assert http.get("/readyz").status_code == httpx.codes.OK
        ids = []
        for title in ("buy milk", "file taxes", "call mum"):
            created = http.post("/api/alice/tasks", json={"title": title})
            assert created.status_code == httpx.codes.CREATED, created.text
            ids.append(created.json()["id"])
        listed = http.get("/api/alice/tasks")
        assert sorted(task["title"] for task in listed.json()) == [
            "buy milk",
            "call mum",
            "file taxes",
        ]
        completed = http.patch(f"/api/alice/tasks/{ids[0]}/complete")
        assert completed.status_code == httpx.codes.OK
        assert completed.json()["completed"] is True
        assert http.delete(f"/api/alice/tasks/{ids[1]}").status_code == httpx.codes.NO_CONTENT

    # The API's sessions are the least-privilege login, and they come from PgBouncer's address,
    # which pools by transaction.
    config = stack.compose("exec", "-T", "pgbouncer", "cat", "/etc/pgbouncer/pgbouncer.ini")
    assert "pool_mode = transaction" in config.stdout.splitlines()
    pgbouncer_ip = docker(
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        stack.container("pgbouncer"),
    ).stdout.strip()
    logins = stack.sql(
        "SELECT DISTINCT usename, host(client_addr) FROM pg_stat_activity"
        " WHERE usename = 'taskapi_api'"
    )
    assert logins == [f"taskapi_api|{pgbouncer_ip}"]
    assert stack.sql(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'taskapi_api'"
    ) == ["f"]

    stack.compose("restart", "api")
    stack.wait_healthy("api")
    with httpx.Client(base_url=stack.base_url, timeout=10, headers=bearer("alice")) as http:
        after = http.get("/api/alice/tasks")
        assert after.status_code == httpx.codes.OK
        by_title = {task["title"]: task["completed"] for task in after.json()}
        assert by_title == {"buy milk": True, "call mum": False}
    assert sorted(stack.sql("SELECT title || '|' || completed FROM tasks")) == [
        "buy milk|true",
        "call mum|false",
    ]
