"""A login role for the API with no right of its own: a member of ``taskapi_app``, nothing more.

On Neon the project's roles own the tables (and bypass row-level security); an API logging in as
one of them could ``RESET ROLE`` out of ``taskapi_app`` inside a transaction. This login can only
take ``taskapi_app``: reset to itself, it may read and change nothing.
"""

from __future__ import annotations

import re
from typing import Final

from adapters.postgres.engine import DatabaseOptions, operator_connection
from adapters.postgres.row_security import API_ROLE

_ROLE_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MIN_PASSWORD_LENGTH: Final = 16


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
        literal = await connection.fetchval("SELECT quote_literal($1)", password)
        verb = "ALTER" if existing is not None else "CREATE"
        await connection.execute(
            f'{verb} ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB '
            f"PASSWORD {literal}"
        )
        await connection.execute(f'GRANT {API_ROLE} TO "{name}"')
    return existing is None
