"""Row-level security on tasks and idempotency_keys, and the role the API works as.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Who runs what:

- Migrations (``taskapi migrate``) run as the role of ``DATABASE_URL``, on the direct (unpooled)
  URL: the owner of the tables (on Neon, the project's owner role, e.g. ``neondb_owner``; locally a
  superuser). Creating ``taskapi_app`` needs CREATEROLE, which Neon's roles have.
- The API logs in with the same URL or another login role, and runs every request's statements
  as ``taskapi_app`` (``SET LOCAL ROLE`` in each transaction). ``taskapi_app`` is NOLOGIN, has no
  BYPASSRLS, and may only SELECT/INSERT/UPDATE/DELETE rows of ``tasks`` and ``idempotency_keys``.
  This migration grants it to the role running the migration; an API that logs in as another role
  needs ``GRANT taskapi_app TO <that role>``.

Policies (``FORCE``, so the tables' owner is bound too; superusers and BYPASSRLS roles are not,
which is why the API switches to ``taskapi_app``): a row exists for a transaction only when its
``user_id`` equals the transaction's ``taskapi.user_id`` setting, for reads and for writes (a row
cannot be inserted or moved to another user). The idempotency-key janitor may see and delete keys
older than 24 hours, and only when it has set ``taskapi.janitor``.

Roles are shared by every database of a PostgreSQL cluster: the role is created only if missing,
and downgrading drops it only when no other database still grants it anything. Later migrations
that add tables must grant ``taskapi_app`` what it needs and give them policies too. A data
migration that must see every row runs as a superuser or a BYPASSRLS role.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("tasks", "idempotency_keys")
# Frozen as first applied: a migration never reads live code, which may change after it ran.
API_ROLE = "taskapi_app"
OWNER_MATCHES = "user_id = current_setting('taskapi.user_id', true)"
EXPIRED_KEY_FOR_JANITOR = (
    "current_setting('taskapi.janitor', true) = 'purge'"
    " AND created_at < now() - interval '86400 seconds'"
)


def upgrade() -> None:
    # Create the role if missing (two first migrations at once may race: either error means
    # someone else created it); refuse one that would defeat the policies; become a member.
    op.execute(
        f"""
        DO $$
        BEGIN
            BEGIN
                CREATE ROLE {API_ROLE} NOLOGIN NOBYPASSRLS;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created for another database of this server
            END;
            IF EXISTS (
                SELECT FROM pg_roles WHERE rolname = '{API_ROLE}'
                AND (rolsuper OR rolbypassrls OR rolcanlogin)
            ) THEN
                RAISE EXCEPTION 'role {API_ROLE} exists with SUPERUSER, BYPASSRLS or LOGIN'
                    USING HINT = 'row-level security would not bind it: remove those attributes';
            END IF;
            IF NOT pg_has_role(current_user, '{API_ROLE}', 'MEMBER') THEN
                BEGIN
                    EXECUTE format('GRANT {API_ROLE} TO %I', current_user);
                EXCEPTION WHEN insufficient_privilege THEN
                    RAISE EXCEPTION 'role % may not grant itself {API_ROLE}', current_user
                        USING HINT = format(
                            'a role with ADMIN on {API_ROLE} must run: GRANT {API_ROLE} TO %I',
                            current_user);
                END;
            END IF;
        END
        $$
        """
    )
    op.execute(
        f"DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO {API_ROLE}', current_schema());"
        " END $$"
    )
    for table in _TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {API_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_owner ON {table}"
            f" USING ({OWNER_MATCHES}) WITH CHECK ({OWNER_MATCHES})"
        )
    for command in ("SELECT", "DELETE"):
        op.execute(
            f"CREATE POLICY idempotency_keys_janitor_{command.lower()} ON idempotency_keys"
            f" FOR {command} USING ({EXPIRED_KEY_FOR_JANITOR})"
        )


def downgrade() -> None:
    for command in ("select", "delete"):
        op.execute(f"DROP POLICY idempotency_keys_janitor_{command} ON idempotency_keys")
    for table in _TABLES:
        op.execute(f"DROP POLICY {table}_owner ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON {table} FROM {API_ROLE}")
    op.execute(
        f"DO $$ BEGIN EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {API_ROLE}',"
        " current_schema()); END $$"
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            DROP ROLE {API_ROLE};
        EXCEPTION
            WHEN dependent_objects_still_exist THEN
                RAISE NOTICE 'role {API_ROLE} kept: another database of this cluster uses it';
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'role {API_ROLE} kept: this role may not drop it';
        END
        $$
        """
    )
