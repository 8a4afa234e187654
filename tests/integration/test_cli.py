"""The real ``taskapi`` command: its exit on bad configuration, ``serve`` and ``migrate``."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.database import create_database, drop_database
from tests.jwks import JwksServer, SigningKey, jwks
from tests.process import taskapi, taskapi_serve
from tests.tokens import SECRET

GOOD_URL = "postgresql://u@127.0.0.1:1/db"
JWKS_URL = "https://auth.example.com/api/auth/jwks"


def test_the_real_command_exits_2_with_one_line_on_stderr(tmp_path: Path) -> None:
    # Each bad setting is checked in process (tests/unit/test_cli_settings.py); this proves the
    # console script itself: exit status, a single stderr line, no traceback, no secret.
    result = taskapi(
        "serve", "--port", "1", cwd=tmp_path, timeout=30,
        DATABASE_URL="mysql://u:hunter2hunter2@h/db", JWT_SECRET=SECRET,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("taskapi: configuration error: DATABASE_URL")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for secret in (SECRET, "hunter2hunter2"):
        assert secret not in result.stderr


def test_serve_with_only_a_jwks_starts_and_verifies_its_tokens(
    tmp_path: Path, database_url: str, clean_tasks: None
) -> None:
    key = SigningKey.generate("EdDSA")
    jwks_server = JwksServer(jwks(key)).start()
    try:
        with taskapi_serve(tmp_path, DATABASE_URL=database_url, JWT_JWKS_URL=jwks_server.url) as (
            base,
            _,
        ):
            assert jwks_server.requests == 0
            headers = {"Authorization": f"Bearer {key.token('alice')}"}
            listed = httpx.get(f"{base}/api/alice/tasks", headers=headers, timeout=10)
            assert listed.status_code == 200, listed.text
            assert jwks_server.requests == 1
    finally:
        jwks_server.stop()


async def test_migrate_applies_the_schema(tmp_path: Path, postgres_server_url: str) -> None:
    url = await create_database(postgres_server_url, prefix="taskapi_cli")
    try:
        result = taskapi("migrate", cwd=tmp_path, DATABASE_URL=url)
        assert result.returncode == 0, result.stderr
        assert "head" in result.stdout
        down = taskapi("migrate", "base", "--down", cwd=tmp_path, DATABASE_URL=url)
        assert down.returncode == 0, down.stderr
    finally:
        await drop_database(postgres_server_url, url)
