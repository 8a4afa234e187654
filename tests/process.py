"""Running the real ``taskapi`` command, as an operator would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

TASKAPI = Path(sys.executable).with_name("taskapi")
_OURS = ("DATABASE_", "JWT_", "CORS_", "LOG_LEVEL", "PROMETHEUS_")


def clean_env(**variables: str) -> dict[str, str]:
    """The current environment without any of the service's variables, plus ``variables``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_OURS)}
    # Served processes take many requests of one test user: their rate limits are off unless a
    # test sets them (they are tested in tests/unit/http/test_rate_limits.py).
    return {**env, "RATE_LIMIT_USER_RPS": "0", "RATE_LIMIT_IP_RPS": "0", **variables}


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


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def taskapi_serve(
    directory: Path,
    *,
    command: str = "serve",
    args: tuple[str, ...] = (),
    timeout: float = 20,
    **variables: str,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Run ``taskapi serve`` (or ``command``, e.g. ``dev``) on a free port until the block ends;
    yields (base URL, process).

    Its output goes to ``directory/server.log``. The process is stopped with SIGTERM (then
    SIGKILL) unless the test already stopped it.
    """
    port = free_port()
    log_path = directory / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603  # our own console script
            [str(TASKAPI), command, "--port", str(port), *args],
            cwd=directory,
            env=clean_env(**variables),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == httpx.codes.OK:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (
                    f"server did not become healthy in {timeout} s:\n{log_path.read_text()}"
                )
                time.sleep(0.05)
            yield base, process
        except BaseException:
            # Whatever failed inside the block, the server's side of the story is shown with it.
            log.flush()
            sys.stderr.write(f"--- taskapi {command} log ({log_path}) ---\n{log_path.read_text()}")
            raise
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
