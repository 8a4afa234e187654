"""A task's version grows with every write to its row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

The version is the row's concurrency token: clients hold it as an ETag, and a change is saved on
condition that the version it started from is still current. That is only sound if the same
version never stands for two different contents, so an UPDATE that does not raise it (a script,
an operator's fix) is refused rather than let through.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Kept as text so that a later migration replacing the function can restore it.
VERSION_GROWS = """
        CREATE FUNCTION taskapi_version_grows() RETURNS trigger
        LANGUAGE plpgsql AS $function$
        BEGIN
            IF NEW.version <= OLD.version THEN
                RAISE EXCEPTION 'tasks.version must grow with every update (% -> %)',
                    OLD.version, NEW.version
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END
        $function$
        """


def upgrade() -> None:
    op.execute(VERSION_GROWS)
    op.execute(
        "CREATE TRIGGER tasks_version_grows BEFORE UPDATE ON tasks "
        "FOR EACH ROW EXECUTE FUNCTION taskapi_version_grows()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER tasks_version_grows ON tasks")
    op.execute("DROP FUNCTION taskapi_version_grows()")
