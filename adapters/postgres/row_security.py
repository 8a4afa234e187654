"""Row-level security: who the API is inside PostgreSQL, and whose rows it may touch.

Defence in depth behind the ``user_id`` filter that every statement carries. Migration 0003 puts
``FORCE ROW LEVEL SECURITY`` on ``tasks`` and ``idempotency_keys`` with policies that admit only
rows whose ``user_id`` equals the transaction's ``taskapi.user_id`` setting, and creates the role
the API works as, ``taskapi_app``: NOLOGIN, no BYPASSRLS, allowed SELECT/INSERT/UPDATE/DELETE on
those two tables and nothing else.

Every repository operation is one SQL function (migration 0004, ``adapters.postgres.functions``)
declared with ``SET role = taskapi_app``, whose body first runs
``set_config('taskapi.user_id', p_owner, true)``: the owner travels as a bound parameter, never
spliced into SQL. Taking the role is what makes the policies bind whatever role the service logs in
as: superusers, and roles with BYPASSRLS (every role Neon creates is a member of
``neon_superuser``, which has it), skip row-level security even under FORCE, but inside the
function the statements run as ``taskapi_app``. The role ends with the function and the owner with
the transaction, which in autocommit is the call itself, so both work through PgBouncer in
transaction mode (Neon's pooled endpoint). Outside such a call ``taskapi.user_id`` is unset or
empty, which matches no row (user ids are 1-255 characters): a statement that forgot its filter,
or ran without the owner set, sees nothing rather than everything.

What this does not do: it is not a boundary against SQL injection (a session may ``RESET ROLE``
or set the setting to any user); statements are parameterised for that. It guards against the
bug that matters here, a query whose owner filter is missing or wrong.

The idempotency-key janitor deletes expired keys of every user: its transaction
(:data:`BEGIN_AS_JANITOR`) sets ``taskapi.janitor`` instead, which a policy turns into "keys older
than 24 hours may be read and deleted" (and nothing else: no task, no live key).
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

BEGIN_AS_API: Final = f"BEGIN; SET LOCAL ROLE {API_ROLE}"
"""A transaction as the API role with no user's rows visible (the readiness probe's)."""

BEGIN_AS_JANITOR: Final = (
    f"BEGIN; SET LOCAL ROLE {API_ROLE}; SELECT set_config('{JANITOR_SETTING}', 'purge', true)"
)
"""The query that opens the transaction in which expired idempotency keys are deleted."""
