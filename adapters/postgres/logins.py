"""A login role for the API with no right of its own: a member of ``taskapi_app``, nothing more.

On Neon the project's roles own the tables (and bypass row-level security); an API logging in as
one of them could ``RESET ROLE`` out of ``taskapi_app`` inside a transaction. This login can only
take ``taskapi_app``: reset to itself, it may read and change nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final

import asyncpg

from adapters.postgres.engine import DatabaseOptions, operator_connection
from adapters.postgres.row_security import API_ROLE

_ROLE_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MIN_PASSWORD_LENGTH: Final = 16
# Printable ASCII: what SASLprep, which SCRAM applies to a password, leaves as it is.
_PASSWORD: Final = re.compile(r"[\x20-\x7e]+")
_SCRAM_ITERATIONS: Final = 4096  # PostgreSQL's default scram_iterations


class LoginRoleError(ValueError):
    """The login role cannot be created as asked; the message says why."""


async def create_api_login(options: DatabaseOptions, name: str, password: str) -> bool:
    """Create (or bring back to this shape) the login role ``name``; True when it was new.

    Runs as the role in ``options`` (the tables' owner, with CREATEROLE and ADMIN on
    ``taskapi_app``). Idempotent: an existing role gets the password, LOGIN and the membership,
    unless it holds rights this login must not have (then ``LoginRoleError``).
    """
    if not _ROLE_NAME.fullmatch(name) or name == API_ROLE:
        raise LoginRoleError(
            f"role name must be 1-63 of a-z, 0-9 and _ (not starting with a digit), not {API_ROLE}"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise LoginRoleError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if not _PASSWORD.fullmatch(password):
        raise LoginRoleError("the password must be printable ASCII characters")
    async with operator_connection(options) as connection, connection.transaction():
        existing = await connection.fetchrow(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
            "FROM pg_roles WHERE rolname = $1",
            name,
        )
        if existing is not None and any(existing.values()):
            raise LoginRoleError(
                f"role {name} exists with SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB; "
                "choose another name"
            )
        if existing is not None:
            await _refuse_other_rights(connection, name)
        literal = await connection.fetchval("SELECT quote_literal($1)", scram_verifier(password))
        verb = "ALTER" if existing is not None else "CREATE"
        await connection.execute(
            f'{verb} ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB '
            f"PASSWORD {literal}"
        )
        await connection.execute(f'GRANT {API_ROLE} TO "{name}"')
    return existing is None


async def _refuse_other_rights(connection: asyncpg.Connection, name: str) -> None:
    """An existing role must not keep another role's rights, or objects it could change."""
    memberships = await connection.fetchval(
        "SELECT array_agg(granted.rolname ORDER BY granted.rolname) FROM pg_auth_members m"
        " JOIN pg_roles granted ON granted.oid = m.roleid"
        " JOIN pg_roles member ON member.oid = m.member"
        " WHERE member.rolname = $1 AND granted.rolname <> $2",
        name,
        API_ROLE,
    )
    if memberships:
        raise LoginRoleError(
            f"role {name} exists as a member of {', '.join(memberships)}; choose another name"
        )
    owns = await connection.fetchval(
        "SELECT r.rolreplication"
        " OR EXISTS (SELECT FROM pg_database WHERE datdba = r.oid)"
        " OR EXISTS (SELECT FROM pg_class WHERE relowner = r.oid)"
        " OR EXISTS (SELECT FROM pg_proc WHERE proowner = r.oid)"
        " OR EXISTS (SELECT FROM pg_namespace WHERE nspowner = r.oid)"
        " OR EXISTS (SELECT FROM pg_class, aclexplode(relacl) AS a WHERE a.grantee = r.oid)"
        " OR EXISTS (SELECT FROM pg_proc, aclexplode(proacl) AS a WHERE a.grantee = r.oid)"
        " FROM pg_roles r WHERE r.rolname = $1",
        name,
    )
    if owns:
        raise LoginRoleError(
            f"role {name} exists and owns, or was granted rights on, objects here (or has "
            "REPLICATION); choose another name"
        )


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """What PostgreSQL stores for ``password`` (RFC 7677): the password itself is never sent.

    A ``PASSWORD '<plain text>'`` would reach the server's statement log and pg_stat_statements.
    The standard library computes it; no driver here exposes libpq's PQencryptPasswordConn.
    """
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    encoded = [base64.b64encode(part).decode() for part in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{encoded[0]}${encoded[1]}:{encoded[2]}"
