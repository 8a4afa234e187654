"""Event streams counted across replicas: each open stream holds a lease in task_streams.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

The contract allows a user 5 open event streams. Each process counted only its own, so behind
several replicas a user could hold 5 on each. Now opening a stream takes a place in
``task_streams`` (``taskapi_open_stream``: refused when the user's live leases are 5); the process
renews the leases of its open streams every 10 s (``taskapi_keep_streams``, 30-s leases; a stream
whose place is gone ends, and its client reconnects under the limit) and gives a place back when
its stream closes (``taskapi_close_stream``). A replica that dies frees its places when their
leases lapse. Row-level security binds the table like every other.

While replicas of the previous version still run, their streams are not counted: roll out quickly.
"""

# ruff: noqa: E501  # generated SQL, frozen verbatim: its lines are not ours to wrap

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

API_ROLE = "taskapi_app"
OWNER_MATCHES = "user_id = current_setting('taskapi.user_id', true)"

SIGNATURES: tuple[str, ...] = (
    "taskapi_open_stream(TEXT, UUID, INTEGER, INTEGER)",
    "taskapi_keep_streams(TEXT, TEXT[], UUID[], INTEGER)",
    "taskapi_close_stream(TEXT, UUID)",
)

# Frozen output of ``python -m adapters.postgres.functions`` for the functions this migration
# creates; a test regenerates it and fails on drift.
FUNCTIONS: tuple[str, ...] = (
    r"""CREATE OR REPLACE FUNCTION taskapi_open_stream(p_owner TEXT, p_stream UUID, p_most INTEGER, p_seconds INTEGER)
RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
PERFORM pg_advisory_xact_lock(hashtextextended(p_owner, 1));
DELETE FROM task_streams WHERE task_streams.user_id = p_owner AND task_streams.until <= now();
IF (SELECT count(*) AS count_1
FROM task_streams
WHERE task_streams.user_id = p_owner) >= p_most THEN
RETURN false;
END IF;
INSERT INTO task_streams (user_id, stream_id, until) VALUES (p_owner, p_stream, (now() + make_interval(0, 0, 0, 0, 0, 0, p_seconds)));
RETURN true;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_keep_streams(p_owner TEXT, p_owners TEXT[], p_streams UUID[], p_seconds INTEGER)
RETURNS TABLE (stream UUID)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
DECLARE
i INTEGER;
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
FOR i IN 1 .. coalesce(array_length(p_owners, 1), 0) LOOP
p_owner := p_owners[i];
PERFORM set_config('taskapi.user_id', p_owner, true);
UPDATE task_streams SET until=(now() + make_interval(0, 0, 0, 0, 0, 0, p_seconds)) WHERE task_streams.user_id = p_owner AND task_streams.stream_id = p_streams[i];
IF NOT FOUND THEN
stream := p_streams[i];
RETURN NEXT;
END IF;
END LOOP;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_close_stream(p_owner TEXT, p_stream UUID)
RETURNS VOID
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
DELETE FROM task_streams WHERE task_streams.user_id = p_owner AND task_streams.stream_id = p_stream;
END
$function$""",
)


def upgrade() -> None:
    op.execute(
        "CREATE TABLE IF NOT EXISTS task_streams (user_id TEXT, stream_id UUID,"
        " until TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (user_id, stream_id))"
    )
    # DELETE: closing a stream, and `taskapi delete-user`, as the API role.
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON task_streams TO {API_ROLE}")
    op.execute("ALTER TABLE task_streams ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE task_streams FORCE ROW LEVEL SECURITY")
    op.execute("DROP POLICY IF EXISTS task_streams_owner ON task_streams")
    op.execute(
        "CREATE POLICY task_streams_owner ON task_streams"
        f" USING ({OWNER_MATCHES}) WITH CHECK ({OWNER_MATCHES})"
    )
    for ddl in FUNCTIONS:
        op.execute(ddl)


def downgrade() -> None:
    for signature in SIGNATURES:
        op.execute(f"DROP FUNCTION {signature}")
    op.execute("DROP TABLE task_streams")
