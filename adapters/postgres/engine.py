"""PostgreSQL URLs as Neon hands them out, and the SQLAlchemy engine that migrations run on.

SQLAlchemy's asyncpg dialect passes URL query parameters to ``asyncpg.connect`` as keywords, so a
Neon URL (``?sslmode=require&channel_binding=require``) would fail with "unexpected keyword
argument 'sslmode'". ``DatabaseOptions.from_url`` translates such a URL into what asyncpg takes.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")
# libpq parameters that asyncpg has no use for (TCP keep-alives, the TLS handshake's details), or
# that this module maps itself.
_DROPPED = (
    "sslcert",
    "sslkey",
    "sslcrl",
    "sslcrldir",
    "sslcompression",
    "sslsni",
    "sslnegotiation",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requiressl",
    "sslpassword",
    "gssencmode",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "fallback_application_name",
)
# What stays in the query: asyncpg takes these itself (several hosts and ports, the login).
# Any other parameter (options, application_name, search_path, TimeZone, …) is a server setting
# sent at connection start, as asyncpg reads a DSN.
_KEPT = ("host", "port", "user", "password", "passfile", "database", "krbsrvname", "gsslib")
# Keyword arguments of SQLAlchemy's asyncpg dialect that asyncpg.connect does not take.
_DIALECT_ONLY: Final = ("prepared_statement_cache_size", "prepared_statement_name_func")


class DatabaseUrlError(ValueError):
    """The database URL cannot be used; the message says why without echoing credentials."""


def _ssl_argument(mode: str, root_cert: str | None) -> ssl.SSLContext | str | bool:
    """Map libpq's ``sslmode`` (and ``sslrootcert``) onto asyncpg's ``ssl`` argument."""
    if mode == "disable":
        return False
    if mode in ("allow", "prefer"):
        return mode
    if mode == "require":
        # libpq's "require" encrypts without checking the certificate (unless a root cert is given).
        if root_cert is None:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        mode = "verify-ca"
    if mode in ("verify-ca", "verify-full"):
        try:
            context = ssl.create_default_context(cafile=root_cert)
        except (OSError, ssl.SSLError) as error:
            raise DatabaseUrlError(f"sslrootcert {root_cert!r} is not readable: {error}") from None
        context.check_hostname = mode == "verify-full"
        return context
    raise DatabaseUrlError(f"unsupported sslmode {mode!r}")


@dataclass(frozen=True, slots=True)
class DatabaseOptions:
    """Everything needed to open connections: the asyncpg URL and its connection arguments."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)
    transaction_pooler: bool = False

    @classmethod
    def from_url(
        cls,
        raw: str,
        *,
        pooler: bool | None = None,
        connect_timeout: float = 2.0,
        statement_timeout: float = 2.5,
    ) -> DatabaseOptions:
        """Parse a ``postgresql://`` / ``postgres://`` / ``postgresql+asyncpg://`` URL.

        ``pooler`` forces transaction-pooler mode on or off; ``None`` turns it on for hosts with
        ``-pooler`` in their name (Neon's pooled endpoints). Raises ``DatabaseUrlError``.
        """
        try:
            url = make_url(raw)
        except ArgumentError:
            raise DatabaseUrlError("not a valid URL") from None
        if url.drivername not in _SCHEMES:
            raise DatabaseUrlError(
                f"scheme must be postgresql://, postgres:// or postgresql+asyncpg://, not {url.drivername}://"
            )
        query = dict(url.query)
        connect_args: dict[str, Any] = {
            "timeout": _connect_timeout(query, connect_timeout),
            "command_timeout": statement_timeout,
        }
        ssl_mode = _pop_single(query, "sslmode")
        root_cert = _pop_single(query, "sslrootcert")
        if root_cert == "system":
            # libpq 16's meaning: the system's trust store, verify-full unless told otherwise,
            # and any weaker sslmode refused.
            if ssl_mode not in (None, "verify-full"):
                raise DatabaseUrlError(
                    f"sslrootcert=system needs sslmode=verify-full, not {ssl_mode}"
                )
            ssl_mode, root_cert = "verify-full", None
        if _pop_single(query, "channel_binding") == "require":
            # libpq would refuse a server that cannot prove it holds the password's secret;
            # asyncpg cannot bind the channel, so it checks the server's certificate instead,
            # fully: the password must never reach whoever merely answers on the address.
            if ssl_mode in ("disable", "allow", "prefer"):
                raise DatabaseUrlError(f"channel_binding=require needs TLS, not sslmode={ssl_mode}")
            ssl_mode = "verify-full"
        if ssl_mode is not None:
            connect_args["ssl"] = _ssl_argument(ssl_mode, root_cert)
        for name in _DROPPED:
            query.pop(name, None)
        dbname = _pop_single(query, "dbname")  # libpq's name for the database
        if dbname is not None:
            url = url.set(database=dbname)
        server_settings = {
            name: value
            for name in [name for name in query if name not in _KEPT]
            if (value := _pop_single(query, name)) is not None
        }
        if server_settings:
            connect_args["server_settings"] = server_settings
        hosts = [url.host or ""]
        host_param = query.get("host")
        hosts += [host_param] if isinstance(host_param, str) else list(host_param or ())
        if pooler is None:
            pooler = any("-pooler" in host for host in hosts)
        if pooler:
            # PgBouncer in transaction mode hands each transaction a different server
            # connection: named prepared statements would vanish under us.
            connect_args["statement_cache_size"] = 0
            connect_args["prepared_statement_cache_size"] = 0
            connect_args["prepared_statement_name_func"] = _unique_statement_name
        return cls(
            url=url.set(drivername="postgresql+asyncpg", query=query),
            connect_args=connect_args,
            transaction_pooler=pooler,
        )

    def redacted(self) -> str:
        """The URL without its password (in the user part or the query), for logs and messages."""
        url = self.url.set(drivername="postgresql")
        shown = url.difference_update_query(["password"]).render_as_string(hide_password=True)
        if "password" in url.query:
            shown += ("&" if "?" in shown else "?") + "password=***"
        return shown

    @property
    def unencrypted_remote(self) -> bool:
        """Whether the URL asks for no encryption to a host other than this machine."""
        if self.connect_args.get("ssl") not in (False, "allow"):
            return False
        hosts = [self.url.host or "", *_query_hosts(self.url)]
        return any(not _is_local(host) for host in hosts if host)

    @property
    def dsn(self) -> str:
        """The URL as asyncpg itself takes it, password included."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def asyncpg_arguments(self) -> dict[str, Any]:
        """``connect_args`` without those only SQLAlchemy's dialect understands."""
        return {k: v for k, v in self.connect_args.items() if k not in _DIALECT_ONLY}


def _connect_timeout(query: dict[str, str | tuple[str, ...]], default: float) -> float:
    timeout = _pop_single(query, "connect_timeout")
    try:
        given = float(timeout) if timeout is not None else 0.0
    except ValueError:
        raise DatabaseUrlError("connect_timeout must be a number of seconds") from None
    # libpq's 0 (or less) is no limit; a service waits DATABASE_CONNECT_TIMEOUT then.
    return given if given > 0 else default


def _query_hosts(url: URL) -> list[str]:
    hosts = url.query.get("host")
    return [hosts] if isinstance(hosts, str) else list(hosts or ())


def _is_local(host: str) -> bool:
    # A Unix socket directory, or a loopback name or address.
    return host.startswith(("/", "127.")) or host in ("localhost", "::1")


def _pop_single(query: dict[str, str | tuple[str, ...]], name: str) -> str | None:
    value = query.pop(name, None)
    if isinstance(value, tuple):
        raise DatabaseUrlError(f"{name} may be given once only")
    return value


def _unique_statement_name() -> str:
    return f"__taskapi_{uuid.uuid4().hex}__"


@asynccontextmanager
async def operator_connection(options: DatabaseOptions) -> AsyncIterator[asyncpg.Connection]:
    """One connection for an operator's command: no statement timeout, closed at the end."""
    arguments = options.asyncpg_arguments()
    arguments.pop("command_timeout", None)
    connection = await asyncpg.connect(options.dsn, **arguments)
    try:
        yield connection
    finally:
        await connection.close()


def create_unpooled_engine(options: DatabaseOptions) -> AsyncEngine:
    """Create a SQLAlchemy async engine without a pool, for one-off work such as migrations.

    Without the API's statement timeout: a migration's backfill or index build on a large table
    runs for as long as it takes.
    """
    connect_args = {k: v for k, v in options.connect_args.items() if k != "command_timeout"}
    return create_async_engine(options.url, connect_args=connect_args, poolclass=NullPool)
