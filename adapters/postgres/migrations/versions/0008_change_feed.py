"""The change feed: every task's place in its owner's feed, and tombstones of deleted tasks.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

``tasks.change_seq`` comes with a constant default (0: tasks stored before the feed, ordered by
id), so adding it rewrites nothing. From here on a trigger gives every written task a new place
from ``task_change_seq``, and another keeps a tombstone of every deleted one, each after taking
the owner's transaction lock: a user's changes commit in the order of their places, so a reader
that has passed a place has seen every change of that user before it. Both also NOTIFY
``taskapi_changes`` with the owner, delivered on commit, for the event streams. Tombstones are under
row-level security like tasks; the janitor purges them after 31 days (a sync token more than 30
days old is 410). ``task_change_horizon`` records the place the feed starts after.

Functions keep their signatures (the writing ones now take the owner's lock first), so processes
of the previous version keep working through this migration; ``taskapi_list_changes`` and
``taskapi_changed_owners`` are new.
"""

# ruff: noqa: E501  # generated SQL, frozen verbatim: its lines are not ours to wrap

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

API_ROLE = "taskapi_app"
OWNER_MATCHES = "user_id = current_setting('taskapi.user_id', true)"
EXPIRED_TOMBSTONE_FOR_JANITOR = (
    "current_setting('taskapi.janitor', true) = 'purge'"
    " AND deleted_at < now() - interval '2678400 seconds'"
)

# Their return types list the tasks' columns, which change_seq joins: dropped and created again.
RETURN_TYPE_CHANGED: tuple[str, ...] = (
    "taskapi_list_tasks(TEXT, BOOLEAN, SMALLINT[], TEXT[], TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, TEXT[], TEXT, BOOLEAN, BIGINT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT, INTEGER)",
    "taskapi_create_task_once(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT[], TEXT, TEXT, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, INTEGER)",
)
SIGNATURES: tuple[str, ...] = (
    "taskapi_get_task(TEXT, BIGINT)",
    "taskapi_list_tasks(TEXT, BOOLEAN, SMALLINT[], TEXT[], TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, TEXT[], TEXT, BOOLEAN, BIGINT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT, INTEGER)",
    "taskapi_insert_task(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT[], TIMESTAMP WITH TIME ZONE, INTEGER)",
    "taskapi_save_task(TEXT, BIGINT, BIGINT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT[], BOOLEAN, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, BIGINT)",
    "taskapi_delete_task(TEXT, BIGINT, BIGINT[])",
    "taskapi_create_task_once(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT[], TEXT, TEXT, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, INTEGER)",
    "taskapi_list_tags(TEXT)",
    "taskapi_list_changes(TEXT, BIGINT, BIGINT, BIGINT, INTEGER)",
    "taskapi_changed_owners(TEXT, TEXT[], BIGINT)",
)

# Whoever writes a task (the API, a script), it takes its place in the owner's feed, after the
# owner's earlier changes have committed. An update that keeps the version changes only derived
# columns (the version trigger refuses any other): not a change of the task, and a backfill of
# many users' rows then takes no lock per user.
TASK_CHANGED = """CREATE OR REPLACE FUNCTION taskapi_task_changed() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.version = OLD.version THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.user_id, 0));
    NEW.change_seq := nextval('task_change_seq');
    PERFORM pg_notify('taskapi_changes', NEW.user_id);
    RETURN NEW;
END
$function$"""

# Whoever deletes a task, the owner's other devices learn of it (for 30 days).
TASK_DELETED = """CREATE OR REPLACE FUNCTION taskapi_task_deleted() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(OLD.user_id, 0));
    INSERT INTO task_tombstones (task_id, user_id, deleted_at, change_seq)
    VALUES (OLD.id, OLD.user_id, now(), nextval('task_change_seq'));
    PERFORM pg_notify('taskapi_changes', OLD.user_id);
    RETURN OLD;
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
RETURN QUERY SELECT tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key, tasks.change_seq
FROM tasks
WHERE tasks.id = p_task_id AND tasks.user_id = p_owner;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_list_tasks(p_owner TEXT, p_completed BOOLEAN, p_priorities SMALLINT[], p_tags TEXT[], p_due_before TIMESTAMP WITH TIME ZONE, p_due_after TIMESTAMP WITH TIME ZONE, p_words TEXT[], p_sort TEXT, p_descending BOOLEAN, p_after_id BIGINT, p_after_at TIMESTAMP WITH TIME ZONE, p_after_rank SMALLINT, p_after_title TEXT, p_limit INTEGER)
RETURNS TABLE (id BIGINT, user_id TEXT, title TEXT, description TEXT, completed BOOLEAN, completed_at TIMESTAMP WITH TIME ZONE, created_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, version BIGINT, due_at TIMESTAMP WITH TIME ZONE, priority SMALLINT, tags TEXT[], title_key TEXT, change_seq BIGINT, total BIGINT)
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
page := format('SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key, change_seq FROM %s ORDER BY due_at, id LIMIT $14', source);
ELSIF p_sort = 'due_at' THEN
IF p_after_id IS NULL OR p_after_at IS NOT NULL THEN
dated := format('SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key, change_seq FROM %s AND due_at IS NOT NULL%s ORDER BY due_at %s, id %s LIMIT $14', source, CASE WHEN p_after_id IS NULL THEN '' ELSE format(' AND (due_at, id) %s ($11, $10)', beyond) END, dir, dir);
END IF;
page := format('SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key, change_seq FROM %s AND due_at IS NULL%s ORDER BY id %s LIMIT $14', source, CASE WHEN p_after_id IS NULL OR p_after_at IS NOT NULL THEN '' ELSE format(' AND id %s $10', beyond) END, dir);
IF dated IS NOT NULL THEN page := format('SELECT * FROM ((%s) UNION ALL (%s)) AS due ORDER BY due_at IS NULL, due_at %s, id %s LIMIT $14', dated, page, dir, dir);
END IF;
ELSE
page := format('SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key, change_seq FROM %s%s ORDER BY %s %s, id %s LIMIT $14', source, CASE WHEN p_after_id IS NULL THEN '' ELSE format(' AND (%s, id) %s (%s, $10)', sort_key, beyond, CASE p_sort WHEN 'priority' THEN '$12' WHEN 'title' THEN 'lower($13)' ELSE '$11' END) END, sort_key, dir, dir);
END IF;
RETURN QUERY EXECUTE format('%sSELECT page.*, counted.total FROM (SELECT count(*) AS total FROM %s) AS counted LEFT JOIN (%s) AS page ON true', CASE WHEN p_words IS NULL THEN '' ELSE format('WITH matching AS MATERIALIZED (SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key, change_seq FROM tasks WHERE %s) ', filters) END, source, page)
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
RETURN QUERY INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1, p_due_at, p_priority, p_tags) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key, tasks.change_seq;
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
PERFORM pg_advisory_xact_lock(hashtextextended(p_owner, 0));
RETURN QUERY UPDATE tasks SET title=p_title, description=p_description, completed=p_completed, completed_at=p_completed_at, updated_at=p_updated_at, version=p_version, due_at=p_due_at, priority=p_priority, tags=p_tags WHERE tasks.id = p_task_id AND tasks.user_id = p_owner AND tasks.version = p_expected_version RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key, tasks.change_seq;
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
PERFORM pg_advisory_xact_lock(hashtextextended(p_owner, 0));
RETURN QUERY DELETE FROM tasks WHERE tasks.id = p_task_id AND tasks.user_id = p_owner AND (p_expected_versions IS NULL OR tasks.version = ANY (p_expected_versions)) RETURNING true AS deleted, tasks.version;
IF NOT FOUND THEN
RETURN QUERY SELECT false AS deleted, tasks.version
FROM tasks
WHERE tasks.id = p_task_id AND tasks.user_id = p_owner;
END IF;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_create_task_once(p_owner TEXT, p_title TEXT, p_description TEXT, p_due_at TIMESTAMP WITH TIME ZONE, p_priority SMALLINT, p_tags TEXT[], p_key TEXT, p_fingerprint TEXT, p_at TIMESTAMP WITH TIME ZONE, p_expired_before TIMESTAMP WITH TIME ZONE, p_max_tasks INTEGER)
RETURNS TABLE (claimed BOOLEAN, fingerprint TEXT, id BIGINT, user_id TEXT, title TEXT, description TEXT, completed BOOLEAN, completed_at TIMESTAMP WITH TIME ZONE, created_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, version BIGINT, due_at TIMESTAMP WITH TIME ZONE, priority SMALLINT, tags TEXT[], title_key TEXT, change_seq BIGINT)
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
INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1, p_due_at, p_priority, p_tags) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key, tasks.change_seq INTO stored;
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
    r"""CREATE OR REPLACE FUNCTION taskapi_list_changes(p_owner TEXT, p_after_seq BIGINT, p_after_id BIGINT, p_floor BIGINT, p_limit INTEGER)
RETURNS TABLE (id BIGINT, user_id TEXT, title TEXT, description TEXT, completed BOOLEAN, completed_at TIMESTAMP WITH TIME ZONE, created_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, version BIGINT, due_at TIMESTAMP WITH TIME ZONE, priority SMALLINT, tags TEXT[], title_key TEXT, change_seq BIGINT, deleted_at TIMESTAMP WITH TIME ZONE, horizon BIGINT, latest BIGINT)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
RETURN QUERY SELECT page.*, horizon.starts_after, latest.seq FROM
(SELECT starts_after FROM task_change_horizon) AS horizon
CROSS JOIN (SELECT coalesce(greatest( (SELECT max(change_seq) FROM tasks WHERE user_id = p_owner), (SELECT max(change_seq) FROM task_tombstones WHERE user_id = p_owner)), 0) AS seq) AS latest
LEFT JOIN (
(SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key, change_seq, NULL::TIMESTAMP WITH TIME ZONE AS deleted_at FROM tasks WHERE user_id = p_owner AND (change_seq, id) > (p_after_seq, p_after_id) ORDER BY change_seq, id LIMIT p_limit)
UNION ALL
(SELECT task_id, user_id, NULL::TEXT, NULL::TEXT, NULL::BOOLEAN, NULL::TIMESTAMP WITH TIME ZONE, NULL::TIMESTAMP WITH TIME ZONE, NULL::TIMESTAMP WITH TIME ZONE, NULL::BIGINT, NULL::TIMESTAMP WITH TIME ZONE, NULL::SMALLINT, NULL::TEXT[], NULL::TEXT, change_seq, deleted_at FROM task_tombstones WHERE user_id = p_owner AND change_seq > greatest(p_after_seq, p_floor) AND p_floor IS NOT NULL ORDER BY change_seq LIMIT p_limit)
) AS page ON true
ORDER BY page.change_seq, page.id LIMIT p_limit;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_changed_owners(p_owner TEXT, p_owners TEXT[], p_after_seq BIGINT)
RETURNS TABLE (owner TEXT, place BIGINT)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
FOREACH p_owner IN ARRAY p_owners LOOP
PERFORM set_config('taskapi.user_id', p_owner, true);
IF EXISTS (SELECT FROM tasks WHERE user_id = p_owner AND change_seq > p_after_seq)
OR EXISTS (SELECT FROM task_tombstones WHERE user_id = p_owner AND change_seq > p_after_seq) THEN
owner := p_owner;
RETURN NEXT;
END IF;
END LOOP;
RETURN QUERY SELECT NULL::TEXT, last_value FROM task_change_seq;
END
$function$""",
)


def upgrade() -> None:
    # Every step may run again: the index is built CONCURRENTLY, after the rest has committed, so
    # a failure there leaves Alembic at 0007 with the rest in place.
    # Places start at the clock in microseconds, and the horizon just below: after a downgrade
    # and this upgrade again, a token from before can only be a 410, never a silent gap.
    op.execute(
        "DO $$ BEGIN IF to_regclass('task_change_seq') IS NULL THEN"
        " EXECUTE format('CREATE SEQUENCE task_change_seq AS BIGINT START WITH %s',"
        " (extract(epoch FROM clock_timestamp()) * 1000000)::bigint); END IF; END $$"
    )
    # USAGE to take places, SELECT for the event streams' poll of the last one taken.
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE task_change_seq TO {API_ROLE}")
    op.execute("ALTER TABLE tasks ADD COLUMN IF NOT EXISTS change_seq BIGINT NOT NULL DEFAULT 0")
    op.execute(
        "CREATE TABLE IF NOT EXISTS task_tombstones (task_id BIGINT PRIMARY KEY,"
        " user_id TEXT NOT NULL, deleted_at TIMESTAMP WITH TIME ZONE NOT NULL,"
        " change_seq BIGINT NOT NULL)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS task_tombstones_user_change_idx"
        " ON task_tombstones (user_id, change_seq)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS task_tombstones_deleted_idx ON task_tombstones (deleted_at)"
    )
    op.execute(f"GRANT SELECT, INSERT, DELETE ON task_tombstones TO {API_ROLE}")
    _force_row_security(
        "task_tombstones",
        ("task_tombstones_owner", f"USING ({OWNER_MATCHES}) WITH CHECK ({OWNER_MATCHES})"),
        *(
            (
                f"task_tombstones_janitor_{command.lower()}",
                f"FOR {command} USING ({EXPIRED_TOMBSTONE_FOR_JANITOR})",
            )
            for command in ("SELECT", "DELETE")
        ),
    )
    op.execute(
        "CREATE TABLE IF NOT EXISTS task_change_horizon"
        " (id SMALLINT PRIMARY KEY, starts_after BIGINT NOT NULL)"
    )
    op.execute(
        "INSERT INTO task_change_horizon (id, starts_after) SELECT 1, start_value - 1"
        " FROM pg_sequences WHERE schemaname = current_schema()"
        " AND sequencename = 'task_change_seq' ON CONFLICT (id) DO NOTHING"
    )
    # Read by every request, changed by none; no user's data, but forced like every table.
    op.execute(f"GRANT SELECT ON task_change_horizon TO {API_ROLE}")
    _force_row_security(
        "task_change_horizon", ("task_change_horizon_read", "FOR SELECT USING (true)")
    )
    for signature in RETURN_TYPE_CHANGED:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    for ddl in FUNCTIONS:
        op.execute(ddl)
    op.execute(TASK_CHANGED)
    op.execute(TASK_DELETED)
    op.execute(
        "CREATE OR REPLACE TRIGGER tasks_change_seq BEFORE INSERT OR UPDATE ON tasks"
        " FOR EACH ROW EXECUTE FUNCTION taskapi_task_changed()"
    )
    op.execute(
        "CREATE OR REPLACE TRIGGER tasks_tombstone AFTER DELETE ON tasks"
        " FOR EACH ROW EXECUTE FUNCTION taskapi_task_deleted()"
    )
    # An earlier attempt's build that failed leaves an invalid index, which IF NOT EXISTS keeps.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = 'tasks_user_change_idx' AND NOT i.indisvalid)"
        " THEN DROP INDEX tasks_user_change_idx; END IF; END $$"
    )
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_user_change_idx"
            " ON tasks (user_id, change_seq, id)"
        )


def _force_row_security(table: str, *policies: tuple[str, str]) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    for name, rule in policies:
        op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
        op.execute(f"CREATE POLICY {name} ON {table} {rule}")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS tasks_user_change_idx")
    op.execute("DROP TRIGGER tasks_tombstone ON tasks")
    op.execute("DROP TRIGGER tasks_change_seq ON tasks")
    op.execute("DROP FUNCTION taskapi_task_deleted()")
    op.execute("DROP FUNCTION taskapi_task_changed()")
    for signature in SIGNATURES:
        op.execute(f"DROP FUNCTION {signature}")
    op.execute("ALTER TABLE tasks DROP COLUMN change_seq")
    # The modules' names start with a digit: importlib, not an import statement.
    rich = importlib.import_module("adapters.postgres.migrations.versions.0007_rich_tasks")
    for ddl in rich.FUNCTIONS:
        op.execute(ddl)
    op.execute("DROP TABLE task_change_horizon")
    op.execute("DROP TABLE task_tombstones")
    op.execute("DROP SEQUENCE task_change_seq")
