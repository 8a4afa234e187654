"""The ``taskapi`` command: configuration errors, ``migrate`` and ``token``."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest

from tests.database import create_database, drop_database
from tests.jwks import JwksServer, SigningKey, jwks
from tests.process import taskapi, taskapi_serve
from tests.tokens import SECRET

GOOD_URL = "postgresql://u@127.0.0.1:1/db"
JWKS_URL = "https://auth.example.com/api/auth/jwks"


@pytest.mark.parametrize(
    ("variables", "names"),
    [
        ({"DATABASE_URL": GOOD_URL}, "JWT_SECRET"),
        ({"DATABASE_URL": GOOD_URL, "JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"JWT_SECRET": SECRET}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://u@h/db", "JWT_SECRET": SECRET}, "DATABASE_URL"),
        (
            {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "JWT_ALGORITHMS": "none"},
            "JWT_ALGORITHMS",
        ),
        (
            {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "JWT_ALGORITHMS": "HS257"},
            "JWT_ALGORITHMS",
        ),
        (
            {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "JWT_LEEWAY_SECONDS": "soon"},
            "JWT_LEEWAY_SECONDS",
        ),
        (
            {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "LOG_LEVEL": "CHATTY"},
            "LOG_LEVEL",
        ),
        ({"DATABASE_URL": GOOD_URL, "JWT_JWKS_URL": "ftp://auth.example/jwks"}, "JWT_JWKS_URL"),
        (
            {"DATABASE_URL": GOOD_URL, "JWT_JWKS_URL": JWKS_URL, "JWT_ALGORITHMS": "HS256"},
            "JWT_ALGORITHMS",
        ),
        (
            {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "JWT_ALGORITHMS": "EdDSA"},
            "JWT_ALGORITHMS",
        ),
        (
            {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "CURSOR_SECRET": "short"},
            "CURSOR_SECRET",
        ),
    ],
)
def test_serve_refuses_bad_configuration_in_one_line(
    tmp_path: Path, variables: dict[str, str], names: str
) -> None:
    result = taskapi("serve", "--port", "1", cwd=tmp_path, timeout=30, **variables)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert names in lines[0]
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_serve_never_echoes_the_database_password(tmp_path: Path) -> None:
    result = taskapi(
        "serve", cwd=tmp_path, DATABASE_URL="mysql://u:hunter2hunter2@h/db", JWT_SECRET=SECRET
    )
    assert result.returncode == 2
    assert "hunter2hunter2" not in result.stderr


def test_token_prints_a_verifiable_token(tmp_path: Path) -> None:
    result = taskapi(
        "token", "--sub", "alice", "--ttl", "120", cwd=tmp_path, JWT_SECRET=SECRET,
        JWT_AUDIENCE="taskapi", JWT_ISSUER="https://auth.example",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(
        result.stdout.strip(),
        SECRET,
        algorithms=["HS256"],
        audience="taskapi",
        issuer="https://auth.example",
    )
    assert claims["sub"] == "alice"
    assert 110 <= claims["exp"] - claims["iat"] <= 120


def test_token_needs_a_secret(tmp_path: Path) -> None:
    result = taskapi("token", "--sub", "alice", cwd=tmp_path)
    assert result.returncode == 2
    assert "JWT_SECRET" in result.stderr


def test_token_with_only_a_jwks_says_it_needs_the_shared_secret(tmp_path: Path) -> None:
    result = taskapi("token", "--sub", "alice", cwd=tmp_path, JWT_JWKS_URL=JWKS_URL)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "JWT_SECRET" in lines[0]
    assert "JWT_JWKS_URL" in lines[0]


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
