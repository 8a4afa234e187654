"""Row-level security: who the API is inside PostgreSQL, and whose rows it may touch.

Defence in depth behind the ``user_id`` filter that every statement carries. Migration 0003 puts
``FORCE ROW LEVEL SECURITY`` on ``tasks`` and ``idempotency_keys`` with policies that admit only
rows whose ``user_id`` equals the transaction's ``taskapi.user_id`` setting, and creates the role
the API works as, ``taskapi_app``: NOLOGIN, no BYPASSRLS, allowed SELECT/INSERT/UPDATE/DELETE on
those two tables and nothing else.

Every repository call is one transaction that starts with :func:`begin_as_owner`, sent as one
simple-protocol query (one round trip)::

    BEGIN; SET LOCAL ROLE taskapi_app; SELECT set_config('taskapi.user_id', E'<owner>', true)

``SET LOCAL ROLE`` is what makes the policies bind whatever role the service logs in as:
superusers, and roles with BYPASSRLS (every role Neon creates is a member of ``neon_superuser``,
which has it), skip row-level security even under FORCE, but after ``SET ROLE`` the statements
run as ``taskapi_app``. Both settings are transaction-local, so they end with the transaction and
work through PgBouncer in transaction mode (Neon's pooled endpoint). Outside such a transaction
``taskapi.user_id`` is unset or empty, which matches no row (user ids are 1-255 characters): a
statement that forgot its filter, or ran outside :func:`begin_as_owner`, sees nothing rather than
everything.

What this does not do: it is not a boundary against SQL injection (a session may ``RESET ROLE``
or set the setting to any user); statements are parameterised for that. It guards against the
bug that matters here, a query whose owner filter is missing or wrong.

The idempotency-key janitor deletes expired keys of every user: :func:`begin_as_janitor` sets
``taskapi.janitor`` instead, which a policy turns into "keys older than 24 hours may be read and
deleted" (and nothing else: no task, no live key).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

IDEMPOTENCY_KEY_LIFETIME: Final = timedelta(hours=24)
"""How long an ``Idempotency-Key`` is remembered; the janitor may delete it after that."""

API_ROLE: Final = "taskapi_app"
"""The role every request's statements run as (created by migration 0003)."""

OWNER_SETTING: Final = "taskapi.user_id"
"""The transaction-local setting naming the user whose rows are visible."""

JANITOR_SETTING: Final = "taskapi.janitor"
"""Set to ``purge`` for the transaction that deletes expired idempotency keys."""

OWNER_MATCHES: Final = f"user_id = current_setting('{OWNER_SETTING}', true)"
"""The policy condition for rows (existing and new) of ``tasks`` and ``idempotency_keys``."""

EXPIRED_KEY_FOR_JANITOR: Final = (
    f"current_setting('{JANITOR_SETTING}', true) = 'purge'"
    f" AND created_at < now() - interval '{int(IDEMPOTENCY_KEY_LIFETIME.total_seconds())} seconds'"
)
"""The policy condition under which the janitor may see and delete a key of any user."""


def _literal(value: str) -> str:
    r"""``value`` as a PostgreSQL escape-string constant (``E'…'``).

    An escape string reads the same whatever ``standard_conforming_strings`` says: backslashes
    and quotes are doubled, nothing else is special. PostgreSQL text cannot hold NUL, and the
    domain's user ids cannot either; refusing it here keeps this function safe on its own.
    """
    if "\x00" in value:
        msg = "a PostgreSQL string cannot contain NUL"
        raise ValueError(msg)
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def begin_as_owner(owner: str, *, lock_timeout: str | None = None) -> str:
    """The query that opens a transaction in which only ``owner``'s rows exist.

    ``lock_timeout`` (a PostgreSQL interval such as ``'2s'``) bounds waits for row locks in it.
    """
    query = (
        f"BEGIN; SET LOCAL ROLE {API_ROLE}; "
        f"SELECT set_config('{OWNER_SETTING}', {_literal(owner)}, true)"
    )
    if lock_timeout is not None:
        query += f"; SET LOCAL lock_timeout = {_literal(lock_timeout)}"
    return query


BEGIN_AS_API: Final = f"BEGIN; SET LOCAL ROLE {API_ROLE}"
"""A transaction as the API role with no user's rows visible (the readiness probe's)."""

BEGIN_AS_JANITOR: Final = (
    f"BEGIN; SET LOCAL ROLE {API_ROLE}; SELECT set_config('{JANITOR_SETTING}', 'purge', true)"
)
"""The query that opens the transaction in which expired idempotency keys are deleted."""
