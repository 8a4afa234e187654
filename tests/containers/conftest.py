"""The container stage: the production image and the compose stack, on a real Docker engine.

``make test-containers`` (containers/stage.sh) builds the images and names them in the
environment; run without them, these tests fail and say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; a failure shows its output."""
    result = subprocess.run(  # noqa: S603  # the docker CLI with the tests' own arguments
        [shutil.which("docker") or "docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """The image names the stage built or pulled (TASKAPI_IMAGE and the three it runs on)."""
    names = [
        "TASKAPI_IMAGE",
        "TASKAPI_PYTHON_IMAGE",
        "TASKAPI_POSTGRES_IMAGE",
        "TASKAPI_PGBOUNCER_IMAGE",
    ]
    missing = [name for name in names if not os.environ.get(name)]
    assert not missing, f"run by `make test-containers`, which builds the images ({missing} unset)"
    return {name: os.environ[name] for name in names}
