"""Owners' task counts, and NOTIFY only for owners whose changes some process streams.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

``task_counts`` holds each owner's number of tasks, kept by statement triggers on the tasks (under
the owner's lock, which the row triggers take; emptied by a TRUNCATE of tasks): the task limit
and an unfiltered listing's total read one row instead of counting up to 10,000. The upgrade
fills it while holding writes to ``tasks`` off (SHARE ROW EXCLUSIVE; reads go on), for the one
GROUP BY the count takes.

``task_watches`` holds, per owner, until when some process streams their changes; the listener
of each process renews the lease of its streaming owners (``taskapi_watch_owners``). The change
triggers NOTIFY only while a lease is live: a NOTIFY serialises committing transactions on the
notification queue, which cost creations about a third of their throughput. While replicas of the
previous version still run, their open streams are woken only for owners that a new replica also
streams (or by a reconnection): roll out quickly; a client resumes from its last id either way.

A task keeps its owner: an UPDATE of ``user_id`` is refused (the API never makes one; row-level
security refuses it first). Functions keep their signatures.
"""

# ruff: noqa: E501  # generated SQL, frozen verbatim: its lines are not ours to wrap

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

API_ROLE = "taskapi_app"
OWNER_MATCHES = "user_id = current_setting('taskapi.user_id', true)"

SIGNATURES: tuple[str, ...] = (
    "taskapi_list_tasks(TEXT, BOOLEAN, SMALLINT[], TEXT[], TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, TEXT[], TEXT, BOOLEAN, BIGINT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT, INTEGER)",
    "taskapi_insert_task(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT[], TIMESTAMP WITH TIME ZONE, INTEGER)",
    "taskapi_create_task_once(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT[], TEXT, TEXT, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, INTEGER)",
    "taskapi_watch_owners(TEXT, TEXT[], INTEGER)",
)

# Any writer of a task takes the owner's lock and a place in the feed, and NOTIFYs if the owner is
# streamed.
TASK_CHANGED = """CREATE OR REPLACE FUNCTION taskapi_task_changed() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.version = OLD.version THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.user_id, 0));
    NEW.change_seq := nextval('task_change_seq');
    IF EXISTS (SELECT FROM task_watches WHERE user_id = NEW.user_id AND until > now()) THEN
        PERFORM pg_notify('taskapi_changes', NEW.user_id);
    END IF;
    RETURN NEW;
END
$function$"""

TASK_DELETED = """CREATE OR REPLACE FUNCTION taskapi_task_deleted() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(OLD.user_id, 0));
    INSERT INTO task_tombstones (task_id, user_id, deleted_at, change_seq)
    VALUES (OLD.id, OLD.user_id, now(), nextval('task_change_seq'));
    IF EXISTS (SELECT FROM task_watches WHERE user_id = OLD.user_id AND until > now()) THEN
        PERFORM pg_notify('taskapi_changes', OLD.user_id);
    END IF;
    RETURN OLD;
END
$function$"""

# Counted once per statement and owner, from the statement's rows: a row-level count would update
# one owner's row once per task, and a bulk load of one owner's tasks in one transaction would
# walk an ever longer chain of that row's versions.
TASKS_INSERTED = """CREATE OR REPLACE FUNCTION taskapi_tasks_inserted() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    INSERT INTO task_counts AS counts (user_id, tasks)
    SELECT user_id, count(*) FROM inserted GROUP BY user_id
    ON CONFLICT (user_id) DO UPDATE SET tasks = counts.tasks + excluded.tasks;
    RETURN NULL;
END
$function$"""

TASKS_DELETED = """CREATE OR REPLACE FUNCTION taskapi_tasks_deleted() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    UPDATE task_counts AS counts SET tasks = counts.tasks - deleted.tasks
    FROM (SELECT user_id, count(*) AS tasks FROM removed GROUP BY user_id) AS deleted
    WHERE counts.user_id = deleted.user_id;
    RETURN NULL;
END
$function$"""

# A task keeps its owner: the counts and the feed are per owner (a move would leave the first
# owner's devices holding it). Checked after row-level security, which refuses the API first.
TASK_MOVED = """CREATE OR REPLACE FUNCTION taskapi_task_moved() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    RAISE EXCEPTION 'a task keeps its owner' USING ERRCODE = 'check_violation';
END
$function$"""

# Whoever empties the tasks (an operator, the tests) empties the counts with them.
TASKS_TRUNCATED = """CREATE OR REPLACE FUNCTION taskapi_tasks_truncated() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    TRUNCATE task_counts;
    RETURN NULL;
END
$function$"""

# Frozen output of ``python -m adapters.postgres.functions`` for the functions this migration
# (re)creates; a test regenerates it and fails on drift.
FUNCTIONS: tuple[str, ...] = (
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
counted TEXT;
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
counted := CASE WHEN filters = 'user_id = $1' THEN 'SELECT coalesce((SELECT task_counts.tasks FROM task_counts WHERE task_counts.user_id = $1), 0)::BIGINT AS total' ELSE format('SELECT count(*) AS total FROM %s', source) END;
RETURN QUERY EXECUTE format('%sSELECT page.*, counted.total FROM (%s) AS counted LEFT JOIN (%s) AS page ON true', CASE WHEN p_words IS NULL THEN '' ELSE format('WITH matching AS MATERIALIZED (SELECT id, user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags, title_key, change_seq FROM tasks WHERE %s) ', filters) END, counted, page)
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
IF p_max_tasks IS NOT NULL AND (SELECT coalesce((SELECT task_counts.tasks FROM task_counts WHERE task_counts.user_id = p_owner), 0)::BIGINT AS total) >= p_max_tasks THEN
RAISE EXCEPTION 'task limit reached' USING ERRCODE = 'TL001';
END IF;
RETURN QUERY INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1, p_due_at, p_priority, p_tags) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key, tasks.change_seq;
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
IF p_max_tasks IS NOT NULL AND (SELECT coalesce((SELECT task_counts.tasks FROM task_counts WHERE task_counts.user_id = p_owner), 0)::BIGINT AS total) >= p_max_tasks THEN
RAISE EXCEPTION 'task limit reached' USING ERRCODE = 'TL001';
END IF;
INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1, p_due_at, p_priority, p_tags) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key, tasks.change_seq INTO stored;
UPDATE idempotency_keys SET task=to_jsonb(stored) WHERE idempotency_keys.user_id = p_owner AND idempotency_keys.key = p_key;
RETURN QUERY SELECT true, NULL::TEXT, (stored).*;
END
$function$""",
    r"""CREATE OR REPLACE FUNCTION taskapi_watch_owners(p_owner TEXT, p_owners TEXT[], p_seconds INTEGER)
RETURNS TABLE (owner TEXT, lease TEXT)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
FOREACH p_owner IN ARRAY p_owners LOOP
PERFORM set_config('taskapi.user_id', p_owner, true);
owner := p_owner;
UPDATE task_watches SET until=greatest(task_watches.until, now() + make_interval(0, 0, 0, 0, 0, 0, p_seconds)) WHERE task_watches.user_id = p_owner AND task_watches.until > now() + interval '10 seconds';
IF FOUND THEN
lease := 'extended';
ELSIF pg_try_advisory_xact_lock(hashtextextended(p_owner, 0)) THEN
INSERT INTO task_watches (user_id, until) VALUES (p_owner, (now() + make_interval(0, 0, 0, 0, 0, 0, p_seconds))) ON CONFLICT (user_id) DO UPDATE SET until = excluded.until;
lease := 'taken';
ELSE
lease := 'busy';
END IF;
RETURN NEXT;
END LOOP;
END
$function$""",
)


TRIGGERS: tuple[str, ...] = (
    "tasks_counted AFTER INSERT ON tasks REFERENCING NEW TABLE AS inserted"
    " FOR EACH STATEMENT EXECUTE FUNCTION taskapi_tasks_inserted()",
    "tasks_uncounted AFTER DELETE ON tasks REFERENCING OLD TABLE AS removed"
    " FOR EACH STATEMENT EXECUTE FUNCTION taskapi_tasks_deleted()",
    "tasks_keep_owner AFTER UPDATE OF user_id ON tasks FOR EACH ROW"
    " WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION taskapi_task_moved()",
    "tasks_truncated AFTER TRUNCATE ON tasks"
    " FOR EACH STATEMENT EXECUTE FUNCTION taskapi_tasks_truncated()",
)


def upgrade() -> None:
    for table, columns in (
        ("task_counts", "user_id TEXT PRIMARY KEY, tasks INTEGER NOT NULL"),
        ("task_watches", "user_id TEXT PRIMARY KEY, until TIMESTAMP WITH TIME ZONE NOT NULL"),
    ):
        op.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        # DELETE: `taskapi delete-user` removes the user's rows, as the API role.
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {API_ROLE}")
    # No write to tasks between the count and the triggers that keep it from then on. Queued
    # behind a long writer, the lock request would hold up every write after it: give up instead
    # (run the migration again).
    op.execute("SET LOCAL lock_timeout = '3s'")
    op.execute("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute("RESET lock_timeout")
    op.execute(TASK_CHANGED)
    op.execute(TASK_DELETED)
    for ddl in (TASKS_INSERTED, TASKS_DELETED, TASK_MOVED, TASKS_TRUNCATED):
        op.execute(ddl)
    for trigger in TRIGGERS:
        op.execute(f"CREATE OR REPLACE TRIGGER {trigger}")
    # Counted afresh (a run again too). A role that row-level security would hide rows from
    # fails here, loudly, instead of counting nothing.
    op.execute("SET LOCAL row_security = off")
    op.execute("DELETE FROM task_counts")
    op.execute(
        "INSERT INTO task_counts (user_id, tasks) SELECT user_id, count(*) FROM tasks"
        " GROUP BY user_id"
    )
    op.execute("RESET row_security")
    for table in ("task_counts", "task_watches"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"DROP POLICY IF EXISTS {table}_owner ON {table}")
        op.execute(
            f"CREATE POLICY {table}_owner ON {table}"
            f" USING ({OWNER_MATCHES}) WITH CHECK ({OWNER_MATCHES})"
        )
    for ddl in FUNCTIONS:
        op.execute(ddl)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURES[-1]}")
    # The modules' names start with a digit: importlib, not an import statement.
    feed = importlib.import_module("adapters.postgres.migrations.versions.0008_change_feed")
    for ddl in feed.FUNCTIONS:
        op.execute(ddl)
    op.execute(feed.TASK_CHANGED)
    op.execute(feed.TASK_DELETED)
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger.split()[0]} ON tasks")
    for function in ("tasks_inserted", "tasks_deleted", "task_moved", "tasks_truncated"):
        op.execute(f"DROP FUNCTION taskapi_{function}()")
    op.execute("DROP TABLE task_watches")
    op.execute("DROP TABLE task_counts")
