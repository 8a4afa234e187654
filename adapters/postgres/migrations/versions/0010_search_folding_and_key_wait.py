"""Search folds final sigma and sharp s; a keyed creation's lock timeout covers only its key.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

``taskapi_list_tasks``: ``q`` compared ``lower()`` of the words and the text, which leaves ς apart
from σ and ß apart from ss, so ``ΣΊΣΥΦΟΣ`` did not find ``σίσυφος``. Both are folded now.
Nothing stored changes (the search reads the text as it is).

``taskapi_create_task_once``: its two-second lock timeout is how long a request waits for a key
held by a request in flight (then a 409). It also covered the owner's lock, so a keyed creation
queued behind the same user's other writes got that 409 without any other request holding its
key. The two seconds now bound only the claim of the key; then the function waits as an unkeyed
creation does, under the session's own lock timeout.

Functions keep their signatures.
"""

# ruff: noqa: E501  # generated SQL, frozen verbatim: its lines are not ours to wrap

from __future__ import annotations

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURES: tuple[str, ...] = (
    "taskapi_list_tasks(TEXT, BOOLEAN, SMALLINT[], TEXT[], TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, TEXT[], TEXT, BOOLEAN, BIGINT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT, INTEGER)",
    "taskapi_create_task_once(TEXT, TEXT, TEXT, TIMESTAMP WITH TIME ZONE, SMALLINT, TEXT[], TEXT, TEXT, TIMESTAMP WITH TIME ZONE, TIMESTAMP WITH TIME ZONE, INTEGER)",
)

# Frozen output of ``python -m adapters.postgres.functions`` for the functions this migration
# replaces; a test regenerates it and fails on drift.
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
searched TEXT;
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
word := replace(replace(lower(word), 'ς', 'σ'), 'ß', 'ss');
searched := 'lower(title || E''\n'' || coalesce(description, ''''))';
IF strpos(word, 'σ') > 0 THEN searched := format('replace(%s, ''ς'', ''σ'')', searched); END IF;
IF strpos(word, 's') > 0 THEN searched := format('replace(%s, ''ß'', ''ss'')', searched); END IF;
filters := filters || format(' AND %s LIKE %L', searched, '%' || word || '%');
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
    r"""CREATE OR REPLACE FUNCTION taskapi_create_task_once(p_owner TEXT, p_title TEXT, p_description TEXT, p_due_at TIMESTAMP WITH TIME ZONE, p_priority SMALLINT, p_tags TEXT[], p_key TEXT, p_fingerprint TEXT, p_at TIMESTAMP WITH TIME ZONE, p_expired_before TIMESTAMP WITH TIME ZONE, p_max_tasks INTEGER)
RETURNS TABLE (claimed BOOLEAN, fingerprint TEXT, id BIGINT, user_id TEXT, title TEXT, description TEXT, completed BOOLEAN, completed_at TIMESTAMP WITH TIME ZONE, created_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, version BIGINT, due_at TIMESTAMP WITH TIME ZONE, priority SMALLINT, tags TEXT[], title_key TEXT, change_seq BIGINT)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET role = taskapi_app
AS $function$
#variable_conflict use_column
DECLARE
taken TEXT;
kept_fingerprint TEXT;
kept_task JSONB;
stored tasks;
waits TEXT := current_setting('lock_timeout');
BEGIN
PERFORM set_config('taskapi.user_id', p_owner, true);
PERFORM set_config('lock_timeout', '2s', true);
INSERT INTO idempotency_keys (user_id, key, fingerprint, task, created_at) VALUES (p_owner, p_key, p_fingerprint, NULL, p_at) ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = p_fingerprint, task = NULL, created_at = p_at WHERE idempotency_keys.created_at < p_expired_before RETURNING idempotency_keys.key INTO taken;
IF taken IS NULL THEN
SELECT idempotency_keys.fingerprint, idempotency_keys.task
FROM idempotency_keys
WHERE idempotency_keys.user_id = p_owner AND idempotency_keys.key = p_key INTO kept_fingerprint, kept_task;
RETURN QUERY SELECT false, kept_fingerprint, kept.* FROM jsonb_populate_record(NULL::tasks, kept_task) AS kept;
RETURN;
END IF;
PERFORM set_config('lock_timeout', waits, true);
PERFORM pg_advisory_xact_lock(hashtextextended(p_owner, 0));
IF p_max_tasks IS NOT NULL AND (SELECT coalesce((SELECT task_counts.tasks FROM task_counts WHERE task_counts.user_id = p_owner), 0)::BIGINT AS total) >= p_max_tasks THEN
RAISE EXCEPTION 'task limit reached' USING ERRCODE = 'TL001';
END IF;
INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at, version, due_at, priority, tags) VALUES (p_owner, p_title, p_description, false, NULL, p_at, p_at, 1, p_due_at, p_priority, p_tags) RETURNING tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, tasks.completed_at, tasks.created_at, tasks.updated_at, tasks.version, tasks.due_at, tasks.priority, tasks.tags, tasks.title_key, tasks.change_seq INTO stored;
UPDATE idempotency_keys SET task=to_jsonb(stored) WHERE idempotency_keys.user_id = p_owner AND idempotency_keys.key = p_key;
RETURN QUERY SELECT true, NULL::TEXT, (stored).*;
END
$function$""",
)


def upgrade() -> None:
    for ddl in FUNCTIONS:
        op.execute(ddl)


def downgrade() -> None:
    # The modules' names start with a digit: importlib, not an import statement.
    previous = importlib.import_module(
        "adapters.postgres.migrations.versions.0009_owner_counts_and_watches"
    )
    replaced = {ddl.split("(", 1)[0] for ddl in FUNCTIONS}
    for ddl in previous.FUNCTIONS:
        if ddl.split("(", 1)[0] in replaced:
            op.execute(ddl)
