"""The compose CLI here: the ``docker compose`` plugin, or Debian's ``docker-compose``."""

from __future__ import annotations

import shutil
import subprocess


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(  # noqa: S603  # fixed arguments
            [docker, "compose", "version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None
