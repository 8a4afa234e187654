"""Running the real ``taskapi`` command, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TASKAPI = Path(sys.executable).with_name("taskapi")
_OURS = ("DATABASE_", "JWT_", "CORS_", "LOG_LEVEL")


def clean_env(**variables: str) -> dict[str, str]:
    """The current environment without any of the service's variables, plus ``variables``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_OURS)}
    return {**env, **variables}


def taskapi(
    *args: str, cwd: Path, timeout: float = 60, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Run ``taskapi ARGS`` to completion in ``cwd`` (where no ``.env`` lies)."""
    return subprocess.run(  # noqa: S603  # our own console script, fixed arguments
        [str(TASKAPI), *args],
        cwd=cwd,
        env=clean_env(**variables),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
