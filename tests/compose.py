"""The compose CLI here: the ``docker compose`` plugin, or Debian's ``docker-compose``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# Compose v1 refuses /dev/null ("is not a file").
EMPTY_ENV_FILE = str(Path(__file__).with_name("compose.env"))


def compose_command() -> list[str] | None:
    """The CLI, told to read no ``.env``: that file is the service's own settings in a checkout."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(  # noqa: S603  # fixed arguments
            [docker, "compose", "version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose", "--env-file", EMPTY_ENV_FILE]
    legacy = shutil.which("docker-compose")
    return [legacy, "--env-file", EMPTY_ENV_FILE] if legacy else None
