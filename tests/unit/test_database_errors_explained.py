"""``explain``: one line an operator can act on, whatever PostgreSQL appends to its message."""

from __future__ import annotations

import asyncpg

from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.errors import explain

OPTIONS = DatabaseOptions.from_url("postgresql://owner:secret@db.example/app")


def _refused(kind: type[asyncpg.PostgresError], message: str, hint: str) -> asyncpg.PostgresError:
    error = kind(message)
    error.hint = hint  # what asyncpg sets from the server's HINT field
    return error


def test_row_level_security_in_the_way_of_a_migration_says_bypassrls_in_one_line() -> None:
    error = _refused(
        asyncpg.InsufficientPrivilegeError,
        'query would be affected by row-level security policy for table "tasks"',
        "To disable the policy for the table owner, use ALTER TABLE NO FORCE ROW LEVEL SECURITY.",
    )
    said = explain(error, OPTIONS)
    assert said is not None
    assert "\n" not in said
    assert "BYPASSRLS" in said
    assert "NO FORCE" not in said
    assert "secret" not in said


def test_any_refusal_is_its_message_alone() -> None:
    error = _refused(asyncpg.UndefinedTableError, 'relation "tasks" does not exist', "Migrate.")
    assert explain(error, OPTIONS) == 'PostgreSQL refused: relation "tasks" does not exist'


def test_a_lock_wait_given_up_says_to_run_it_again() -> None:
    error = _refused(asyncpg.LockNotAvailableError, "canceling statement due to lock timeout", "")
    assert explain(error, OPTIONS) == (
        "canceling statement due to lock timeout: a long transaction held a table this needs"
        " (see pg_stat_activity); run it again"
    )
