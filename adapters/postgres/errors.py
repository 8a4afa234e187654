"""What went wrong when a command could not use the database, in one line an operator can act on."""

from __future__ import annotations

import socket
import ssl

import asyncpg
from sqlalchemy.exc import DBAPIError

from adapters.postgres.engine import DatabaseOptions


def explain(error: BaseException, options: DatabaseOptions) -> str | None:  # noqa: PLR0911  # one answer per kind of failure
    """One line naming the failure and what to check; ``None`` if it is not a database failure.

    Messages come from the server or the socket, never from the URL: no password is repeated.
    """
    cause = _root(error)
    where = f"{options.url.host or 'localhost'}:{options.url.port or 5432}"
    if isinstance(cause, asyncpg.InvalidPasswordError):
        return f"the server refused the login: {cause}; check DATABASE_URL's user and password"
    if isinstance(cause, asyncpg.InvalidAuthorizationSpecificationError):
        return f"the server refused the login: {cause}; check DATABASE_URL's user"
    if isinstance(cause, asyncpg.InvalidCatalogNameError):
        return f"{cause}; check the database name in DATABASE_URL"
    if isinstance(cause, asyncpg.PostgresError):
        # The message alone: asyncpg appends the server's HINT on another line, and its advice
        # (NO FORCE ROW LEVEL SECURITY) is not ours.
        said = first_line(cause)
        if "would be affected by row-level security" in said:
            return (
                f"{said}; this command needs every row: run it as a role with BYPASSRLS "
                "(Neon: the owner role) or a superuser"
            )
        if isinstance(cause, asyncpg.LockNotAvailableError):
            return (
                f"{said}: a long transaction held a table this needs (see pg_stat_activity); "
                "run it again"
            )
        if isinstance(cause, asyncpg.InsufficientPrivilegeError):
            return (
                f"{said}; this command needs the tables' owner (Neon: the direct URL of the "
                "owner role), and the API's login needs membership of taskapi_app"
            )
        return f"PostgreSQL refused: {said}"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f"the certificate of {where} could not be verified ({cause.verify_message}); "
            "check the host name, or sslrootcert for a private CA"
        )
    if isinstance(cause, ConnectionRefusedError):
        return f"nothing accepts connections at {where}; is PostgreSQL running, is the port right?"
    if isinstance(cause, socket.gaierror):
        return f"the host {options.url.host} cannot be resolved; check DATABASE_URL's host"
    if isinstance(cause, TimeoutError):
        return (
            f"{where} did not answer in time; check the address and the network "
            "(connect_timeout in the URL, else DATABASE_CONNECT_TIMEOUT, sets the wait)"
        )
    if isinstance(cause, OSError | asyncpg.InterfaceError):
        return f"cannot reach {where}: {cause}"
    return None


def first_line(error: BaseException) -> str:
    """What an error says, without the DETAIL and HINT lines asyncpg appends to the message."""
    return str(error).split("\n", 1)[0]


def _root(error: BaseException) -> BaseException:
    # SQLAlchemy wraps the driver's error; the driver's own is the one that says what happened.
    if isinstance(error, DBAPIError) and error.orig is not None:
        orig = error.orig
        return getattr(orig, "__cause__", None) or orig
    return error
