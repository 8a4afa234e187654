"""Rich tasks: due date, priority and tags; listings filtered, searched and sorted five ways.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

Adding the columns rewrites nothing (their defaults are constants); the CHECKs are added NOT VALID
and validated after the backfill, which takes only a SHARE UPDATE EXCLUSIVE lock; ``title_key``
(the title as the title sort compares it) is filled in batches, each its own transaction; the
indexes are built CONCURRENTLY. So a large table stays readable and writable throughout.

Every repository function is replaced (``python -m adapters.postgres.functions``): the writing
ones take the new fields, the listing one filters and sorts, and ``taskapi_list_tags`` is new.
Old application processes fail their calls from the first statement of this migration on:
migrate, then roll the application promptly (docs/operations.md).
"""

# ruff: noqa: E501  # generated SQL, frozen verbatim: its lines are not ours to wrap

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SIGNATURES: tuple[str, ...] = (
    "taskapi_list_tasks(TEXT, BOOLEAN, TIMESTAMP WITH TIME ZONE, BIGINT, INTEGER)",
    "taskapi_insert_task(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, INTEGER)",
    "taskapi_save_task(TEXT, BIGINT, BIGINT, TEXT, TEXT, BOOLEAN, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, BIGINT)",
    "taskapi_create_task_once(TEXT, TEXT, TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, INTEGER)",
)
SIGNATURES: tuple[str, ...] = (
    "taskapi_get_task(TEXT, BIGINT)",
    "taskapi_list_tasks(TEXT, BOOLEAN, SMALLINT[], TEXT[], TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, TEXT[], TEXT, BOOLEAN, BIGINT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT, INTEGER)",
    "taskapi_insert_task(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT[], TIMESTAMP WITH TIME ZONE, INTEGER)",
    "taskapi_save_task(TEXT, BIGINT, BIGINT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT[], BOOLEAN, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, BIGINT)",
    "taskapi_delete_task(TEXT, BIGINT, BIGINT[])",
    "taskapi_create_task_once(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT[], TEXT, TEXT, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, INTEGER)",
    "taskapi_list_tags(TEXT)",
)

CHECKS: tuple[tuple[str, str], ...] = (
    ("tasks_priority_valid", "priority BETWEEN 0 AND 3"),
    (
        "tasks_tags_valid",
        "cardinality(tags) <= 20 AND array_position(tags, NULL) IS NULL AND array_to_string(tags, ' ') !~ '[\\x01-\\x1f\\x7f-\\x9f]'",
    ),
    ("tasks_title_key_matches", "title_key IS NOT DISTINCT FROM lower(title)"),
)

INDEXES: tuple[tuple[str, str], ...] = (
    ("tasks_user_updated_idx", "(user_id, updated_at, id)"),
    ("tasks_user_due_idx", "(user_id, due_at, id)"),
    ("tasks_user_undated_idx", "(user_id, id) WHERE due_at IS NULL"),
    ("tasks_user_priority_idx", "(user_id, priority, id)"),
    ("tasks_user_title_idx", "(user_id, title_key, id)"),
)

BACKFILL_BATCH = 10_000

# Whoever writes a title (the API, a script), its sort key follows.
TITLE_KEY = """CREATE OR REPLACE FUNCTION taskapi_title_key() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    NEW.title_key := lower(NEW.title);
    RETURN NEW;
END
$function$"""

# An update that changes nothing but title_key (the backfill) need not raise the version.
VERSION_GROWS = """CREATE OR REPLACE FUNCTION taskapi_version_grows() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    IF NEW.version <= OLD.version
        AND to_jsonb(NEW) - 'title_key' IS DISTINCT FROM to_jsonb(OLD) - 'title_key' THEN
        RAISE EXCEPTION 'tasks.version must grow with every update (% -> %)',
            OLD.version, NEW.version
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$function$"""

# Frozen output of ``python -m adapters.postgres.functions``; a test regenerates it and fails on
# drift.
FUNCTIONS: tuple[str, ...] = (
    r"""CREATE OR REPLACE FUNCTION taskapi_get_task(p_owner TEXT, p_task_id BIGINT)
RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
RETURN QUERY SELECT tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key
FROM tasks
WHERE tasks.id = p_task_id AND tasks.user_id = p_owner;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_list_tasks(p_owner TEXT, p_completed BOOLEAN, p_priorities SMALLINT[], p_tags TEXT[], p_due_before TIMESTAMP WITH TIME ZONE, p_due_after TIMESTAMP WITH TIME ZONE, p_words TEXT[], p_sort TEXT, p_descending BOOLEAN, p_after_id BIGINT, p_after_at TIMESTAMP WITH TIME ZONE, p_after_rank SMALLINT, p_after_title TEXT, p_limit INTEGER)
RETURNS TABLE (id BIGINT, user_id TEXT, title TEXT, description TEXT, completed BOOLEAN, completed_at TIMESTAMP WITH TIME ZONE, created_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, version BIGINT, due_at TIMESTAMP WITH TIME ZONE, priority SMALLINT, tags TEXT[], title_key TEXT, total BIGINT)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
DECLARE
filters TEXT := 'user_id = $1';
sort_key TEXT;
dir TEXT := CASE WHEN p_descending THEN 'DESC' ELSE 'ASC' END;
beyond TEXT := CASE WHEN p_descending THEN '<' ELSE '>' END;
word TEXT;
source TEXT;
dated TEXT;
page TEXT;
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
sort_key := CASE p_sort WHEN 'created_at' THEN 'created_at' WHEN 'updated_at' THEN 'updated_at' WHEN 'due_at' THEN 'due_at' WHEN 'priority' THEN 'priority' WHEN 'title' THEN 'title_key' END;
IF sort_key IS NULL THEN
RAISE EXCEPTION 'unknown sort %', p_sort USING ERRCODE = 'invalid_parameter_value';
END IF;
IF p_completed THEN filters := filters || ' AND completed';
ELSIF NOT p_completed THEN filters := filters || ' AND NOT completed';
END IF;
IF p_priorities IS NOT NULL THEN filters := filters || ' AND priority = ANY ($3)';
END IF;
IF p_tags IS NOT NULL THEN filters := filters || ' AND tags @> $4'; END IF;
IF p_due_before IS NOT NULL THEN filters := filters || ' AND due_at < $5'; END IF;
IF p_due_after IS NOT NULL THEN filters := filters || ' AND due_at >= $6'; END IF;
FOREACH word IN ARRAY coalesce(p_words, '{}') LOOP
filters := filters || format(' AND lower(title || E''\n'' || coalesce(description, '''')) LIKE %L', '%' || lower(word) || '%');
END LOOP;
source := CASE WHEN p_words IS NULL THEN 'tasks WHERE ' || filters ELSE 'matching WHERE true' END;
IF p_sort = 'due_at' AND NOT p_descending AND p_after_id IS NULL THEN
page := format('SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key FROM %s ORDER BY due_at, id LIMIT $14', source);
ELSIF p_sort = 'due_at' THEN
IF p_after_id IS NULL OR p_after_at IS NOT NULL THEN
dated := format('SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key FROM %s AND due_at IS NOT NULL%s ORDER BY due_at %s, id %s LIMIT $14', source, CASE WHEN p_after_id IS NULL THEN '' ELSE format(' AND (due_at, id) %s ($11, $10)', beyond) END, dir, dir);
END IF;
page := format('SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key FROM %s AND due_at IS NULL%s ORDER BY id %s LIMIT $14', source, CASE WHEN p_after_id IS NULL OR p_after_at IS NOT NULL THEN '' ELSE format(' AND id %s $10', beyond) END, dir);
IF dated IS NOT NULL THEN page := format('SELECT * FROM ((%s) UNION ALL (%s)) AS due ORDER BY due_at IS NULL, due_at %s, id %s LIMIT $14', dated, page, dir, dir);
END IF;
ELSE
page := format('SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key FROM %s%s ORDER BY %s %s, id %s LIMIT $14', source, CASE WHEN p_after_id IS NULL THEN '' ELSE format(' AND (%s, id) %s (%s, $10)', sort_key, beyond, CASE p_sort WHEN 'priority' THEN '$12' WHEN 'title' THEN 'lower($13)' ELSE '$11' END) END, sort_key, dir, dir);
END IF;
RETURN QUERY EXECUTE format('%sSELECT page.*, counted.total FROM (SELECT count(*) AS total FROM %s) AS counted LEFT JOIN (%s) AS page ON true', CASE WHEN p_words IS NULL THEN '' ELSE format('WITH matching AS MATERIALIZED (SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key FROM tasks WHERE %s) ', filters) END, source, page)
USING p_owner, p_completed, p_priorities, p_tags, p_due_before, p_due_after, p_words, p_sort, p_descending, p_after_id, p_after_at, p_after_rank, p_after_title, p_limit;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_insert_task(p_owner TEXT, p_title TEXT, p_description TEXT, p_due_at TIMESTAMP WITH TIME ZONE, p_priority SMALLINT, p_tags TEXT[], p_at TIMESTAMP WITH TIME ZONE, p_max_tasks INTEGER)
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
RETURN QUERY INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1, p_due_at, p_priority, p_tags) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_save_task(p_owner TEXT, p_task_id BIGINT, p_expected_version BIGINT, p_title TEXT, p_description TEXT, p_due_at TIMESTAMP WITH TIME ZONE, p_priority SMALLINT, p_tags TEXT[], p_completed BOOLEAN, p_completed_at TIMESTAMP WITH TIME ZONE, p_updated_at TIMESTAMP WITH TIME ZONE, p_version BIGINT)
RETURNS SETOF tasks
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
RETURN QUERY UPDATE tasks SET title=p_title, description=p_description, completed=p_completed, completed_at=p_completed_at, updated_at=p_updated_at, version=p_version, due_at=p_due_at, priority=p_priority, tags=p_tags WHERE tasks.id = p_task_id AND tasks.user_id = p_owner AND tasks.version = p_expected_version RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_delete_task(p_owner TEXT, p_task_id BIGINT, p_expected_versions BIGINT[])
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
    r"""CREATE OR REPLACE FUNCTION taskapi_create_task_once(p_owner TEXT, p_title TEXT, p_description TEXT, p_due_at TIMESTAMP WITH TIME ZONE, p_priority SMALLINT, p_tags TEXT[], p_key TEXT, p_fingerprint TEXT, p_at TIMESTAMP WITH TIME ZONE, p_expired_before TIMESTAMP WITH TIME ZONE, p_max_tasks INTEGER)
RETURNS TABLE (claimed BOOLEAN, fingerprint TEXT, id BIGINT, user_id TEXT, title TEXT, description TEXT, completed BOOLEAN, completed_at TIMESTAMP WITH TIME ZONE, created_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, version BIGINT, due_at TIMESTAMP WITH TIME ZONE, priority SMALLINT, tags TEXT[], title_key TEXT)
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
INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1, p_due_at, p_priority, p_tags) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key INTO stored;
UPDATE idempotency_keys SET task=to_jsonb(stored) WHERE idempotency_keys.user_id = p_owner AND idempotency_keys.key = p_key;
RETURN QUERY SELECT true, NULL::TEXT, (stored).*;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_list_tags(p_owner TEXT)
RETURNS TABLE (tag TEXT, count BIGINT)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
RETURN QUERY SELECT t.tag, count(*) FROM tasks, unnest(tasks.tags) AS t (tag) WHERE tasks.user_id = p_owner GROUP BY t.tag ORDER BY t.tag COLLATE "C";
END
$function$""",
)


def upgrade() -> None:
    # The backfill reads every row once the statements before it have committed: a role that
    # row-level security would hide rows from fails here instead, before anything changes.
    op.execute("SET LOCAL row_security = off")
    op.execute("SELECT FROM tasks LIMIT 1")
    op.execute("RESET row_security")
    # Each step may run again (after a failure past the commit below).
    op.execute(
        "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS due_at TIMESTAMP WITH TIME ZONE,"
        " ADD COLUMN IF NOT EXISTS priority SMALLINT NOT NULL DEFAULT 0,"
        " ADD COLUMN IF NOT EXISTS tags TEXT[] NOT NULL DEFAULT '{}',"
        " ADD COLUMN IF NOT EXISTS title_key TEXT"
    )
    for name, rule in CHECKS:
        op.execute(f"ALTER TABLE tasks DROP CONSTRAINT IF EXISTS {name}")
        op.execute(f"ALTER TABLE tasks ADD CONSTRAINT {name} CHECK ({rule}) NOT VALID")
    for signature in OLD_SIGNATURES:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    for ddl in FUNCTIONS:
        op.execute(ddl)
    op.execute(VERSION_GROWS)
    op.execute(TITLE_KEY)
    op.execute(
        "CREATE OR REPLACE TRIGGER tasks_title_key BEFORE INSERT OR UPDATE OF title ON tasks "
        "FOR EACH ROW EXECUTE FUNCTION taskapi_title_key()"
    )
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        # A role that row-level security would hide rows from fails here, loudly, instead of
        # filling in nothing.
        bind.execute(text("SET row_security = off"))
        last = bind.execute(text("SELECT coalesce(max(id), 0) FROM tasks")).scalar_one()
        for start in range(0, last, BACKFILL_BATCH):  # by id ranges: each batch an index range
            bind.execute(
                text(
                    "UPDATE tasks SET title_key = lower(title)"
                    " WHERE id > :start AND id <= :end AND title_key IS NULL"
                ),
                {"start": start, "end": start + BACKFILL_BATCH},
            )
        bind.execute(text("RESET row_security"))
        for name, _ in CHECKS:
            op.execute(f"ALTER TABLE tasks VALIDATE CONSTRAINT {name}")
        for name, definition in INDEXES:
            # An earlier attempt's failed build leaves an invalid index, which IF NOT EXISTS keeps.
            op.execute(
                "DO $$ BEGIN IF EXISTS (SELECT FROM pg_index i JOIN pg_class c"
                f" ON c.oid = i.indexrelid WHERE c.relname = '{name}' AND NOT i.indisvalid)"
                f" THEN DROP INDEX {name}; END IF; END $$"
            )
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON tasks {definition}")


def downgrade() -> None:
    for name, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    for signature in SIGNATURES:
        op.execute(f"DROP FUNCTION {signature}")
    # The modules' names start with a digit: importlib, not an import statement.
    versions = "adapters.postgres.migrations.versions"
    grows = importlib.import_module(f"{versions}.0005_version_grows").VERSION_GROWS
    op.execute(grows.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("DROP TRIGGER tasks_title_key ON tasks")
    op.execute("DROP FUNCTION taskapi_title_key()")
    for name, _ in CHECKS:
        op.execute(f"ALTER TABLE tasks DROP CONSTRAINT {name}")
    op.execute(
        "ALTER TABLE tasks DROP COLUMN due_at, DROP COLUMN priority, DROP COLUMN tags,"
        " DROP COLUMN title_key"
    )
    replaced = importlib.import_module(f"{versions}.0006_task_limit").FUNCTIONS
    first = [
        ddl
        for ddl in importlib.import_module(f"{versions}.0004_repository_functions").FUNCTIONS
        if "taskapi_insert_task(" not in ddl and "taskapi_create_task_once(" not in ddl
    ]
    for ddl in (*first, *replaced):
        op.execute(ddl)
