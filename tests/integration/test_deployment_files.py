"""The deployment files are valid: compose resolves, the Dockerfile runs as a non-root user."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(  # noqa: S603  # fixed arguments
            [docker, "compose", "version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


COMPOSE = _compose_command()


@pytest.mark.skipif(COMPOSE is None, reason="no docker compose CLI on this machine")
def test_compose_file_resolves() -> None:
    assert COMPOSE is not None
    env = {"PATH": "/usr/bin:/bin", "JWT_SECRET": "x" * 40}
    result = subprocess.run(  # noqa: S603  # fixed arguments
        [*COMPOSE, "config", "--services"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"postgres", "migrate", "api"}


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
