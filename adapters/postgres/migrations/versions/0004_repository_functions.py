"""Repository operations as SQL functions: one round trip per call under row-level security.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Each function is PL/pgSQL, SECURITY INVOKER, declared with ``SET role = taskapi_app``: it takes the
API role for its own duration (a login role that is not a member of ``taskapi_app`` is refused),
sets ``taskapi.user_id`` for the transaction, and runs the operation's statement(s). Called alone
in autocommit, one call is one transaction and one round trip (see
``adapters/postgres/functions.py``, which generates this text).

EXECUTE stays granted to PUBLIC: a function can do nothing its caller could not do as
``taskapi_app``, and the role switch refuses callers that may not take that role.
"""

# ruff: noqa: E501  # generated SQL, frozen verbatim: its lines are not ours to wrap

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen output of ``python -m adapters.postgres.functions`` when this migration was written; a
# test regenerates it and fails on drift (a changed statement needs a new migration).
FUNCTIONS: tuple[str, ...] = (
    """CREATE OR REPLACE FUNCTION taskapi_get_task(p_owner TEXT, p_task_id BIGINT)
RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
RETURN QUERY SELECT tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version
FROM tasks
WHERE tasks.id = p_task_id AND tasks.user_id = p_owner;
END
$function$""",
    """CREATE OR REPLACE FUNCTION taskapi_list_tasks(p_owner TEXT, p_completed BOOLEAN, p_after_at TIMESTAMP WITH TIME ZONE, p_after_id BIGINT, p_limit INTEGER)
RETURNS TABLE (id BIGINT, user_id TEXT, title TEXT, description TEXT, completed BOOLEAN, completed_at TIMESTAMP WITH TIME ZONE, created_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, version BIGINT, total BIGINT)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
IF p_after_at IS NULL THEN
RETURN QUERY SELECT tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, (SELECT count(*) AS count_1
FROM tasks
WHERE tasks.user_id = p_owner AND (p_completed IS NULL OR tasks.completed = p_completed)) AS total
FROM tasks
WHERE tasks.user_id = p_owner AND (p_completed IS NULL OR tasks.completed = p_completed) ORDER BY tasks.created_at, tasks.id
 LIMIT p_limit;
ELSE
RETURN QUERY SELECT tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, (SELECT count(*) AS count_1
FROM tasks
WHERE tasks.user_id = p_owner AND (p_completed IS NULL OR tasks.completed = p_completed)) AS total
FROM tasks
WHERE tasks.user_id = p_owner AND (p_completed IS NULL OR tasks.completed = p_completed) AND (tasks.created_at, tasks.id) > (p_after_at, p_after_id) ORDER BY tasks.created_at, tasks.id
 LIMIT p_limit;
END IF;
IF NOT FOUND THEN
RETURN QUERY SELECT CAST(NULL AS BIGINT) AS id, CAST(NULL AS TEXT) AS user_id, CAST(NULL AS TEXT) AS title, CAST(NULL AS TEXT) AS description, CAST(NULL AS BOOLEAN) AS completed, CAST(NULL AS TIMESTAMP WITH TIME ZONE) AS completed_at, CAST(NULL AS TIMESTAMP WITH TIME ZONE) AS created_at, CAST(NULL AS TIMESTAMP WITH TIME ZONE) AS updated_at, CAST(NULL AS BIGINT) AS version, count(*) AS total
FROM tasks
WHERE tasks.user_id = p_owner AND (p_completed IS NULL OR tasks.completed = p_completed);
END IF;
END
$function$""",
    """CREATE OR REPLACE FUNCTION taskapi_insert_task(p_owner TEXT, p_title TEXT, p_description TEXT, p_at TIMESTAMP WITH TIME ZONE)
RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
RETURN QUERY INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version;
END
$function$""",
    """CREATE OR REPLACE FUNCTION taskapi_save_task(p_owner TEXT, p_task_id BIGINT, p_expected_version BIGINT, p_title TEXT, p_description TEXT, p_completed BOOLEAN, p_completed_at TIMESTAMP WITH TIME ZONE, p_updated_at TIMESTAMP WITH TIME ZONE, p_version BIGINT)
RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
RETURN QUERY UPDATE tasks SET title=p_title, description=p_description, completed=p_completed, completed_at=p_completed_at, updated_at=p_updated_at, version=p_version WHERE tasks.id = p_task_id AND tasks.user_id = p_owner AND tasks.version = p_expected_version RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version;
END
$function$""",
    """CREATE OR REPLACE FUNCTION taskapi_delete_task(p_owner TEXT, p_task_id BIGINT, p_expected_versions BIGINT[])
RETURNS TABLE (deleted BOOLEAN, version BIGINT)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
RETURN QUERY DELETE FROM tasks WHERE tasks.id = p_task_id AND tasks.user_id = p_owner AND (p_expected_versions IS NULL OR tasks.version = ANY (p_expected_versions)) RETURNING true AS deleted, tasks.version;
IF NOT FOUND THEN
RETURN QUERY SELECT false AS deleted, tasks.version
FROM tasks
WHERE tasks.id = p_task_id AND tasks.user_id = p_owner;
END IF;
END
$function$""",
    """CREATE OR REPLACE FUNCTION taskapi_create_task_once(p_owner TEXT, p_key TEXT, p_fingerprint TEXT, p_title TEXT, p_description TEXT, p_at TIMESTAMP WITH TIME ZONE, p_expired_before TIMESTAMP WITH TIME ZONE)
RETURNS TABLE (claimed BOOLEAN, fingerprint TEXT, id BIGINT, user_id TEXT, title TEXT, description TEXT, completed BOOLEAN, completed_at TIMESTAMP WITH TIME ZONE, created_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, version BIGINT)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
SET lock_timeout = '2s'
AS $function$
#variable_conflict use_column
DECLARE
taken TEXT;
kept_fingerprint TEXT;
kept_task JSONB;
stored tasks;
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
INSERT INTO idempotency_keys (user_id, key, fingerprint, task, created_at) VALUES (p_owner, p_key, p_fingerprint, NULL, p_at) ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = p_fingerprint, task = NULL, created_at = p_at WHERE idempotency_keys.created_at < p_expired_before RETURNING idempotency_keys.key INTO taken;
IF taken IS NULL THEN
SELECT idempotency_keys.fingerprint, idempotency_keys.task
FROM idempotency_keys
WHERE idempotency_keys.user_id = p_owner AND idempotency_keys.key = p_key INTO kept_fingerprint, kept_task;
RETURN QUERY SELECT false, kept_fingerprint, kept.* FROM jsonb_populate_record(NULL::tasks, kept_task) AS kept;
RETURN;
END IF;
INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version INTO stored;
UPDATE idempotency_keys SET task=to_jsonb(stored) WHERE idempotency_keys.user_id = p_owner AND idempotency_keys.key = p_key;
RETURN QUERY SELECT true, NULL::TEXT, (stored).*;
END
$function$""",
)
SIGNATURES: tuple[str, ...] = (
    "taskapi_get_task(TEXT, BIGINT)",
    "taskapi_list_tasks(TEXT, BOOLEAN, TIMESTAMP WITH TIME ZONE, BIGINT, INTEGER)",
    "taskapi_insert_task(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE)",
    "taskapi_save_task(TEXT, BIGINT, BIGINT, TEXT, TEXT, BOOLEAN, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, BIGINT)",
    "taskapi_delete_task(TEXT, BIGINT, BIGINT[])",
    "taskapi_create_task_once(TEXT, TEXT, TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE)",
)


def upgrade() -> None:
    for ddl in FUNCTIONS:
        op.execute(ddl)


def downgrade() -> None:
    for signature in reversed(SIGNATURES):
        op.execute(f"DROP FUNCTION {signature}")
