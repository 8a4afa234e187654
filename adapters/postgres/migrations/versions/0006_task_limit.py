"""A user holds at most TASKS_PER_USER_MAX tasks: the creating functions take the limit.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

``taskapi_insert_task`` and ``taskapi_create_task_once`` take ``p_max_tasks``: they queue the
owner's creations on a transaction-level advisory lock, count the owner's tasks, and raise
SQLSTATE TL001 at the limit, which undoes the whole call (an idempotency key it claimed too).
The old signatures are dropped; the downgrade restores them from migration 0004.
"""

# ruff: noqa: E501  # generated SQL, frozen verbatim: its lines are not ours to wrap

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SIGNATURES: tuple[str, ...] = (
    "taskapi_insert_task(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE)",
    "taskapi_create_task_once(TEXT, TEXT, TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE)",
)
SIGNATURES: tuple[str, ...] = (
    "taskapi_insert_task(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, INTEGER)",
    "taskapi_create_task_once(TEXT, TEXT, TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, INTEGER)",
)

# Frozen output of ``python -m adapters.postgres.functions`` for the two functions; a test
# regenerates it and fails on drift.
FUNCTIONS: tuple[str, ...] = (
    """CREATE OR REPLACE FUNCTION taskapi_insert_task(p_owner TEXT, p_title TEXT, p_description TEXT, p_at TIMESTAMP WITH TIME ZONE, p_max_tasks INTEGER)
RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
PERFORM pg_advisory_xact_lock(hashtextextended(p_owner, 0));
IF p_max_tasks IS NOT NULL AND (SELECT count(*) AS count_1
FROM tasks
WHERE tasks.user_id = p_owner) >= p_max_tasks THEN
RAISE EXCEPTION 'task limit reached' USING ERRCODE = 'TL001';
END IF;
RETURN QUERY INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version;
END
$function$""",
    """CREATE OR REPLACE FUNCTION taskapi_create_task_once(p_owner TEXT, p_key TEXT, p_fingerprint TEXT, p_title TEXT, p_description TEXT, p_at TIMESTAMP WITH TIME ZONE, p_expired_before TIMESTAMP WITH TIME ZONE, p_max_tasks INTEGER)
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
PERFORM pg_advisory_xact_lock(hashtextextended(p_owner, 0));
IF p_max_tasks IS NOT NULL AND (SELECT count(*) AS count_1
FROM tasks
WHERE tasks.user_id = p_owner) >= p_max_tasks THEN
RAISE EXCEPTION 'task limit reached' USING ERRCODE = 'TL001';
END IF;
INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version INTO stored;
UPDATE idempotency_keys SET task=to_jsonb(stored) WHERE idempotency_keys.user_id = p_owner AND idempotency_keys.key = p_key;
RETURN QUERY SELECT true, NULL::TEXT, (stored).*;
END
$function$""",
)


def upgrade() -> None:
    for signature in OLD_SIGNATURES:
        op.execute(f"DROP FUNCTION {signature}")
    for ddl in FUNCTIONS:
        op.execute(ddl)


def downgrade() -> None:
    for signature in SIGNATURES:
        op.execute(f"DROP FUNCTION {signature}")
    # The module's name starts with a digit: importlib, not an import statement.
    first = importlib.import_module(
        "adapters.postgres.migrations.versions.0004_repository_functions"
    )
    for ddl in first.FUNCTIONS:
        if "taskapi_insert_task(" in ddl or "taskapi_create_task_once(" in ddl:
            op.execute(ddl)
