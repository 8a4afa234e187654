"""A real PgBouncer in transaction mode in front of the session's PostgreSQL, like Neon's pooler.

Debian's ``pgbouncer`` (``make pgbouncer`` installs it when missing). It refuses to run as root,
so as root it is started with ``-u <user>``: the owner of the server's unix-socket directory when
the server listens on one (the embedded PostgreSQL keeps its socket in a directory only its own
user may enter), else the ``postgres`` system user (else ``nobody``). Its files live in a private
temporary directory owned by that user.

It listens on 127.0.0.1:<free port> and on a unix socket in a directory whose name ends in
``-pooler``: a URL naming that directory as its host turns transaction-pooler mode on by itself
(``DatabaseOptions.from_url``, as for Neon's ``-pooler`` hosts), so even a ``taskapi`` process
started with nothing but ``DATABASE_URL`` runs as it must behind this pooler.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from tests.process import free_port

# Startup parameters asyncpg (or a Neon-style URL) may send that PgBouncer 1.18 does not track;
# without this it refuses the connection ("unsupported startup parameter").
IGNORED_STARTUP_PARAMETERS: Final = "extra_float_digits,options,statement_timeout"


def pgbouncer_binary() -> str | None:
    """Where Debian's ``pgbouncer`` is, if installed (it lives in /usr/sbin)."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None


MISSING_REASON: Final = (
    "pgbouncer is not installed and could not be (`make pgbouncer` installs Debian's package "
    "only as root with apt-get)"
)
needs_pgbouncer: Final = pytest.mark.skipif(pgbouncer_binary() is None, reason=MISSING_REASON)
"""Marks a test that runs PgBouncer: skipped only where it cannot be installed."""


@dataclass(frozen=True, slots=True)
class PgBouncer:
    """A running PgBouncer: where it listens and who it lets in."""

    port: int
    socket_dir: Path
    user: str
    password: str | None
    database: str
    log: Path

    def url(self, database: str | None = None) -> str:
        """``postgresql://user@127.0.0.1:<port>/<database>``: the pooled connection over TCP."""
        return self._url(host="127.0.0.1", port=self.port, database=database)

    def socket_url(self, database: str | None = None) -> str:
        """The pooled connection over its unix socket (a ``-pooler`` host: pooler mode on)."""
        return self._url(
            host=None,
            port=None,
            database=database,
            query={"host": str(self.socket_dir), "port": str(self.port)},
        )

    def _url(
        self,
        *,
        host: str | None,
        port: int | None,
        database: str | None,
        query: dict[str, str] | None = None,
    ) -> str:
        url = URL.create(
            "postgresql",
            username=self.user,
            password=self.password or None,
            host=host,
            port=port,
            database=database or self.database,
            query=query or {},
        )
        return url.render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class _Server:
    host: str  # a host name or address, or a unix-socket directory
    port: int
    user: str
    password: str | None
    database: str

    @property
    def is_socket(self) -> bool:
        return self.host.startswith("/")


def _server(server_url: str) -> _Server:
    url = make_url(server_url)
    query_host = url.query.get("host")
    query_port = url.query.get("port")
    host = url.host or (query_host if isinstance(query_host, str) else None) or "/run/postgresql"
    port = url.port or (int(query_port) if isinstance(query_port, str) else 5432)
    return _Server(
        host=host,
        port=port,
        user=url.username or "postgres",
        password=url.password or None,
        database=url.database or "postgres",
    )


def _run_user(server: _Server) -> str | None:
    """The user PgBouncer runs as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    if server.is_socket:
        owner = pwd.getpwuid(Path(server.host).stat().st_uid).pw_name
        if owner != "root":
            return owner
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no unprivileged user to run pgbouncer as")


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _config(directory: Path, server: _Server, port: int) -> str:
    target = f"host={server.host} port={server.port} user={server.user}"
    if server.password:
        target += f" password={server.password}"
    return "\n".join(
        (
            "[databases]",
            # Every database name maps to the same name on the server: the session's database
            # and any a test creates.
            f"* = {target}",
            "",
            "[pgbouncer]",
            "pool_mode = transaction",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            f"unix_socket_dir = {directory}",
            # Only this machine's loopback and a private directory reach it: no client password.
            "auth_type = trust",
            f"auth_file = {directory / 'userlist.txt'}",
            f"pidfile = {directory / 'pgbouncer.pid'}",
            f"ignore_startup_parameters = {IGNORED_STARTUP_PARAMETERS}",
            "max_client_conn = 500",
            # Two replicas of 20 connections each, plus the tests: queueing, never refusing.
            "default_pool_size = 40",
            "reserve_pool_size = 5",
            "server_login_retry = 1",
            "query_wait_timeout = 30",
            "log_connections = 0",
            "log_disconnections = 0",
            "",
        )
    )


def _probe(pooled_url: str, timeout: float) -> None:
    """One real query through the pooler, on a fresh event loop in a thread of its own.

    Raises when PgBouncer cannot get a server connection (e.g. it may not reach the socket).
    """

    async def select_one() -> None:
        connection = await asyncpg.connect(pooled_url, timeout=timeout, statement_cache_size=0)
        try:
            await connection.fetchval("SELECT 1", timeout=timeout)
        finally:
            await connection.close(timeout=timeout)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, select_one()).result(timeout=timeout + 5)


def _wait_until_listening(
    process: subprocess.Popen[bytes], port: int, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"pgbouncer exited with {process.returncode}:\n{text}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"pgbouncer did not listen on {port} within {timeout} s:\n{text}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # immediate shutdown, clients disconnected
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextmanager
def pgbouncer(server_url: str, *, timeout: float = 15) -> Iterator[PgBouncer]:
    """Run PgBouncer (transaction mode) in front of ``server_url`` until the block ends."""
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError(MISSING_REASON)
    server = _server(server_url)
    run_as = _run_user(server)
    # The name ends in "-pooler": see the module docstring. Short, for the socket path limit.
    directory = Path(tempfile.mkdtemp(prefix="taskapi-pgb-", suffix="-pooler"))
    try:
        port = free_port()
        log = directory / "pgbouncer.log"  # its stderr: it logs there when not daemonised
        password = (server.password or "").replace('"', '""')
        (directory / "userlist.txt").write_text(f'{_quoted(server.user)} "{password}"\n')
        ini = directory / "pgbouncer.ini"
        ini.write_text(_config(directory, server, port))
        command = [binary]
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            for path in (directory, *directory.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            command += ["-u", run_as]
        command.append(str(ini))
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603  # Debian's pgbouncer, our own config
                command, stdout=output, stderr=subprocess.STDOUT
            )
        try:
            _wait_until_listening(process, port, log, timeout)
            running = PgBouncer(
                port=port,
                socket_dir=directory,
                user=server.user,
                password=server.password,
                database=server.database,
                log=log,
            )
            try:
                _probe(running.url(), timeout)
            except Exception as error:
                text = log.read_text() if log.exists() else ""
                raise RuntimeError(f"no query got through pgbouncer: {error!r}\n{text}") from error
            yield running
        finally:
            _stop(process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
