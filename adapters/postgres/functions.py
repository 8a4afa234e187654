"""The SQL functions the repository calls: one per operation, so each costs one round trip.

Row-level security needs the owner set and the API role taken before a statement runs, and no
single statement can do that for itself (DESIGN.md, "Row-level security at one round trip"). So
each operation is a PL/pgSQL function, SECURITY INVOKER, declared with ``SET role = taskapi_app``
(taken on entry, undone on return; refused unless the login role is a member), whose body sets
``taskapi.user_id`` for the transaction and then runs its statement. Called on its own, in
autocommit, a call is its own transaction: the owner setting ends with it, which is also what
PgBouncer's transaction mode needs.

The statements are written by SQLAlchemy Core from the table models, referring to the functions'
parameters (``p_owner``, …) by name. Migration 0004 holds the DDL below as frozen text; a test
regenerates it and fails on drift, so a change here needs a new migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    SmallInteger,
    Table,
    Text,
    Uuid,
    any_,
    delete,
    false,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.elements import ClauseElement, ColumnClause
from sqlalchemy.types import TypeEngine

from adapters.postgres.mapper import TASK_COLUMNS
from adapters.postgres.row_security import API_ROLE, OWNER_SETTING
from adapters.postgres.sql import DIALECT
from adapters.postgres.tables import (
    ChangeHorizonRow,
    IdempotencyKeyRow,
    TaskCountRow,
    TaskRow,
    TaskStreamRow,
    TaskTombstoneRow,
    TaskWatchRow,
)

_tasks: Table = TaskRow.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at run time
_keys: Table = IdempotencyKeyRow.__table__  # type: ignore[attr-defined]  # as above
_tombstones: Table = TaskTombstoneRow.__table__  # type: ignore[attr-defined]  # as above
_horizon: Table = ChangeHorizonRow.__table__  # type: ignore[attr-defined]  # as above
_counts: Table = TaskCountRow.__table__  # type: ignore[attr-defined]  # as above
_watches: Table = TaskWatchRow.__table__  # type: ignore[attr-defined]  # as above
_streams: Table = TaskStreamRow.__table__  # type: ignore[attr-defined]  # as above
_c = _tasks.c

# How long a retry waits for the first request with its key (which holds the key's row lock)
# before it answers 409 idempotency_in_progress: below the client's statement timeout (2.5 s),
# so that the lock timeout, not the statement timeout, ends the wait.
IDEMPOTENCY_WAIT: Final = "2s"


def _param(name: str, type_: TypeEngine[Any]) -> ColumnClause[Any]:
    """A function parameter, as Core sees it: a typed name the statement refers to."""
    return literal_column(name, type_)


_OWNER = _param("p_owner", Text())
_TASK_ID = _param("p_task_id", BigInteger())
_TITLE = _param("p_title", Text())
_DESCRIPTION = _param("p_description", Text())
_AT = _param("p_at", DateTime(timezone=True))
_COMPLETED = _param("p_completed", Boolean())
_DUE_AT = _param("p_due_at", DateTime(timezone=True))
_PRIORITY = _param("p_priority", SmallInteger())
_TAGS = _param("p_tags", ARRAY(Text()))
_PRIORITIES = _param("p_priorities", ARRAY(SmallInteger()))
_DUE_BEFORE = _param("p_due_before", DateTime(timezone=True))
_DUE_AFTER = _param("p_due_after", DateTime(timezone=True))
_WORDS = _param("p_words", ARRAY(Text()))
_SORT = _param("p_sort", Text())
_DESCENDING = _param("p_descending", Boolean())
_AFTER_ID = _param("p_after_id", BigInteger())
_AFTER_AT = _param("p_after_at", DateTime(timezone=True))
_AFTER_RANK = _param("p_after_rank", SmallInteger())
_AFTER_TITLE = _param("p_after_title", Text())
_LIMIT = _param("p_limit", Integer())
_EXPECTED_VERSION = _param("p_expected_version", BigInteger())
_EXPECTED_VERSIONS = _param("p_expected_versions", ARRAY(BigInteger()))
_COMPLETED_AT = _param("p_completed_at", DateTime(timezone=True))
_UPDATED_AT = _param("p_updated_at", DateTime(timezone=True))
_VERSION = _param("p_version", BigInteger())
_KEY = _param("p_key", Text())
_FINGERPRINT = _param("p_fingerprint", Text())
_EXPIRED_BEFORE = _param("p_expired_before", DateTime(timezone=True))
_MAX_TASKS = _param("p_max_tasks", Integer())
_AFTER_SEQ = _param("p_after_seq", BigInteger())
_OWNERS = _param("p_owners", ARRAY(Text()))
_FLOOR = _param("p_floor", BigInteger())
_SECONDS = _param("p_seconds", Integer())
_STREAM = _param("p_stream", Uuid())
_STREAMS = _param("p_streams", ARRAY(Uuid()))
_MOST = _param("p_most", Integer())

TASK_LIMIT_SQLSTATE: Final = "TL001"
"""What a creation beyond the owner's task limit raises (a code of our own, class TL)."""


def _sql(element: ClauseElement | TypeEngine[Any]) -> str:
    """A statement (or a type) as PostgreSQL text, literals inlined (a body has no binds)."""
    if isinstance(element, TypeEngine):
        return str(element.compile(dialect=DIALECT))
    text = str(element.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))
    return "\n".join(line.rstrip() for line in text.splitlines())


_TASK_TABLE_COLUMNS: Final = ", ".join(f"{c.name} {_sql(c.type)}" for c in TASK_COLUMNS)


# Makes p_owner's rows the visible ones, to the end of the transaction.
_AS_OWNER: Final = f"PERFORM set_config('{OWNER_SETTING}', p_owner, true);"


@dataclass(frozen=True)
class SqlFunction:
    """One repository operation as a PL/pgSQL function, and how to call it."""

    name: str
    params: tuple[ColumnClause[Any], ...]
    returns: str
    body: str
    declare: str = ""
    settings: tuple[str, ...] = ()

    @property
    def signature(self) -> str:
        """``name(type, …)``: what ``DROP FUNCTION`` and ``to_regprocedure`` take."""
        return f"{self.name}({', '.join(_sql(p.type) for p in self.params)})"

    @cached_property  # on every request's path
    def call(self) -> str:
        """The query that calls it with the parameters as ``$1 … $n``, in ``params`` order."""
        placeholders = ", ".join(f"${n}" for n in range(1, len(self.params) + 1))
        return f"SELECT * FROM {self.name}({placeholders})"  # noqa: S608  # our own name, no input

    def ddl(self) -> str:
        """``CREATE OR REPLACE FUNCTION …``: the text migration 0004 freezes."""
        params = ", ".join(f"{p.name} {_sql(p.type)}" for p in self.params)
        settings = "".join(f"\nSET {setting}" for setting in (f"role = {API_ROLE}", *self.settings))
        declare = f"DECLARE\n{self.declare}\n" if self.declare else ""
        return (
            f"CREATE OR REPLACE FUNCTION {self.name}({params})\n"
            f"RETURNS {self.returns}\n"
            f"LANGUAGE plpgsql VOLATILE SECURITY INVOKER{settings}\n"
            "AS $function$\n"
            # Columns win over same-named OUT parameters (id, version, …) inside statements.
            "#variable_conflict use_column\n"
            f"{declare}"
            "BEGIN\n"
            f"{_AS_OWNER}\n"
            f"{self.body}\n"
            "END\n"
            "$function$"
        )


_OWNED = (_c.id == _TASK_ID, _c.user_id == _OWNER)
_INSERT = (
    insert(_tasks)
    .values(
        user_id=_OWNER,
        title=_TITLE,
        description=_DESCRIPTION,
        due_at=_DUE_AT,
        priority=_PRIORITY,
        tags=_TAGS,
        completed=false(),
        completed_at=null(),
        created_at=_AT,
        updated_at=_AT,
        version=1,
    )
    .returning(*TASK_COLUMNS)
)


GET_TASK: Final = SqlFunction(
    name="taskapi_get_task",
    params=(_OWNER, _TASK_ID),
    returns=f"SETOF {_tasks.name}",
    body=f"RETURN QUERY {_sql(select(*TASK_COLUMNS).where(*_OWNED))};",
)

_COLUMNS: Final = ", ".join(c.name for c in TASK_COLUMNS)
# How many tasks the owner has: their row of task_counts, which the tasks' triggers keep.
_OWNERS_COUNT: Final = (
    "SELECT coalesce(("
    + _sql(select(_counts.c.tasks).where(_counts.c.user_id == _OWNER))
    + "), 0)::BIGINT AS total"
).replace("\n", " ")
# Where a word is looked for: title and description, a line break apart so no word spans both.
SEARCHED_TEXT: Final = "lower(title || E'\\n' || coalesce(description, ''))"

# A page of the owner's tasks matching the filters in the sort order, with how many match; an
# empty page (past the end) still brings the count, as one row without a task (the page joins
# the count, in the page's order). The statement is
# composed from fixed fragments (the values travel as parameters; the words as quoted literals)
# so that each filter and sort is planned with its own index: one plan cached for every
# combination would scan. A sort by due date reads the dated tasks, then (by id) the undated.
LIST_TASKS: Final = SqlFunction(
    name="taskapi_list_tasks",
    params=(
        _OWNER,
        _COMPLETED,
        _PRIORITIES,
        _TAGS,
        _DUE_BEFORE,
        _DUE_AFTER,
        _WORDS,
        _SORT,
        _DESCENDING,
        _AFTER_ID,
        _AFTER_AT,
        _AFTER_RANK,
        _AFTER_TITLE,
        _LIMIT,
    ),
    returns=f"TABLE ({_TASK_TABLE_COLUMNS}, total BIGINT)",
    declare="\n".join(
        (
            "filters TEXT := 'user_id = $1';",
            "sort_key TEXT;",
            "dir TEXT := CASE WHEN p_descending THEN 'DESC' ELSE 'ASC' END;",
            "beyond TEXT := CASE WHEN p_descending THEN '<' ELSE '>' END;",
            "word TEXT;",
            "searched TEXT;",
            "source TEXT;",
            "dated TEXT;",
            "page TEXT;",
            "counted TEXT;",
        )
    ),
    body="\n".join(
        (
            "sort_key := CASE p_sort WHEN 'created_at' THEN 'created_at'"
            " WHEN 'updated_at' THEN 'updated_at' WHEN 'due_at' THEN 'due_at'"
            " WHEN 'priority' THEN 'priority' WHEN 'title' THEN 'title_key' END;",
            "IF sort_key IS NULL THEN",
            "RAISE EXCEPTION 'unknown sort %', p_sort USING ERRCODE = 'invalid_parameter_value';",
            "END IF;",
            "IF p_completed THEN filters := filters || ' AND completed';",
            "ELSIF NOT p_completed THEN filters := filters || ' AND NOT completed';",
            "END IF;",
            "IF p_priorities IS NOT NULL THEN filters := filters || ' AND priority = ANY ($3)';",
            "END IF;",
            "IF p_tags IS NOT NULL THEN filters := filters || ' AND tags @> $4'; END IF;",
            "IF p_due_before IS NOT NULL THEN filters := filters || ' AND due_at < $5'; END IF;",
            "IF p_due_after IS NOT NULL THEN filters := filters || ' AND due_at >= $6'; END IF;",
            # Case folds final sigma into sigma and ß into ss, which lower() leaves apart
            # (ΣΊΣΥΦΟΣ, STRASSE). The text is folded as far as the word needs: a word without σ
            # (without s) is found in the text alike with or without ς (ß) folded, at no cost.
            "FOREACH word IN ARRAY coalesce(p_words, '{}') LOOP",
            "word := replace(replace(lower(word), 'ς', 'σ'), 'ß', 'ss');",
            f"searched := '{SEARCHED_TEXT.replace(chr(39), chr(39) * 2)}';",
            "IF strpos(word, 'σ') > 0 THEN"
            " searched := format('replace(%s, ''ς'', ''σ'')', searched); END IF;",
            "IF strpos(word, 's') > 0 THEN"
            " searched := format('replace(%s, ''ß'', ''ss'')', searched); END IF;",
            "filters := filters || format(' AND %s LIKE %L', searched, '%' || word || '%');",
            "END LOOP;",
            # A search reads every task of the owner anyway (row-level security keeps LIKE out of
            # any index): read the matches once, then count and page them.
            "source := CASE WHEN p_words IS NULL THEN 'tasks WHERE ' || filters"
            " ELSE 'matching WHERE true' END;",
            # Ascending, NULLS LAST is the index's own order: a first page needs no union.
            "IF p_sort = 'due_at' AND NOT p_descending AND p_after_id IS NULL THEN",
            f"page := format('SELECT {_COLUMNS} FROM %s ORDER BY due_at, id LIMIT $14', source);",  # noqa: S608  # PL/pgSQL text from fixed parts
            "ELSIF p_sort = 'due_at' THEN",
            "IF p_after_id IS NULL OR p_after_at IS NOT NULL THEN",
            f"dated := format('SELECT {_COLUMNS} FROM %s AND due_at IS NOT NULL%s"  # noqa: S608  # PL/pgSQL text from fixed parts
            " ORDER BY due_at %s, id %s LIMIT $14', source,"
            " CASE WHEN p_after_id IS NULL THEN '' ELSE format(' AND (due_at, id) %s ($11, $10)',"
            " beyond) END, dir, dir);",
            "END IF;",
            f"page := format('SELECT {_COLUMNS} FROM %s AND due_at IS NULL%s"  # noqa: S608  # PL/pgSQL text from fixed parts
            " ORDER BY id %s LIMIT $14', source,"
            " CASE WHEN p_after_id IS NULL OR p_after_at IS NOT NULL THEN ''"
            " ELSE format(' AND id %s $10', beyond) END, dir);",
            # The two parts, each at most a page, ordered again: a union promises no order.
            "IF dated IS NOT NULL THEN page := format('SELECT * FROM ((%s) UNION ALL (%s)) AS due"
            " ORDER BY due_at IS NULL, due_at %s, id %s LIMIT $14', dated, page, dir, dir);",
            "END IF;",
            "ELSE",
            f"page := format('SELECT {_COLUMNS} FROM %s%s ORDER BY %s %s, id %s"  # noqa: S608  # PL/pgSQL text from fixed parts
            " LIMIT $14', source, CASE WHEN p_after_id IS NULL THEN ''"
            " ELSE format(' AND (%s, id) %s (%s, $10)', sort_key, beyond, CASE p_sort"
            " WHEN 'priority' THEN '$12' WHEN 'title' THEN 'lower($13)' ELSE '$11' END) END,"
            " sort_key, dir, dir);",
            "END IF;",
            # Without a filter the total is the owner's count, one row; with one, the matches
            # are counted.
            "counted := CASE WHEN filters = 'user_id = $1' THEN"  # noqa: S608  # PL/pgSQL text from fixed parts
            f" '{_OWNERS_COUNT.replace(chr(39), chr(39) * 2).replace('p_owner', '$1')}'"
            " ELSE format('SELECT count(*) AS total FROM %s', source) END;",
            # One row per task, each with the count; no task: one row of NULLs with the count.
            "RETURN QUERY EXECUTE format('%sSELECT page.*, counted.total FROM"  # noqa: S608  # PL/pgSQL text from fixed parts
            " (%s) AS counted LEFT JOIN (%s) AS page ON true',"
            f" CASE WHEN p_words IS NULL THEN '' ELSE format('WITH matching AS MATERIALIZED"
            f" (SELECT {_COLUMNS} FROM tasks WHERE %s) ', filters) END, counted, page)",
            "USING p_owner, p_completed, p_priorities, p_tags, p_due_before, p_due_after,"
            " p_words, p_sort, p_descending, p_after_id, p_after_at, p_after_rank, p_after_title,"
            " p_limit;",
        )
    ),
)

# The owner's tags, each with how many of their tasks carry it, in code point order (as the
# domain sorts a task's tags).
LIST_TAGS: Final = SqlFunction(
    name="taskapi_list_tags",
    params=(_OWNER,),
    returns="TABLE (tag TEXT, count BIGINT)",
    body="RETURN QUERY SELECT t.tag, count(*) FROM tasks, unnest(tasks.tags) AS t (tag)"
    ' WHERE tasks.user_id = p_owner GROUP BY t.tag ORDER BY t.tag COLLATE "C";',
)

# A user's writes queue on one transaction lock: creations so that two at the limit cannot both
# pass the count, and every write so that the user's changes commit in the order of their place
# in the change feed (the trigger of migration 0008 takes it too, for any other writer). Taken
# before any row lock, so that two writers never wait for each other in opposite orders.
_OWNERS_LOCK_KEY: Final = "hashtextextended(p_owner, 0)"
_OWNERS_LOCK: Final = f"PERFORM pg_advisory_xact_lock({_OWNERS_LOCK_KEY});"

# Over the limit, the exception undoes the whole call (a claimed idempotency key too).
_WITHIN_LIMIT: Final = "\n".join(
    (
        _OWNERS_LOCK,
        f"IF p_max_tasks IS NOT NULL AND ({_OWNERS_COUNT}) >= p_max_tasks THEN",
        f"RAISE EXCEPTION 'task limit reached' USING ERRCODE = '{TASK_LIMIT_SQLSTATE}';",
        "END IF;",
    )
)

_NEW_TASK: Final = (_OWNER, _TITLE, _DESCRIPTION, _DUE_AT, _PRIORITY, _TAGS)

INSERT_TASK: Final = SqlFunction(
    name="taskapi_insert_task",
    params=(*_NEW_TASK, _AT, _MAX_TASKS),
    returns=f"SETOF {_tasks.name}",
    body=f"{_WITHIN_LIMIT}\nRETURN QUERY {_sql(_INSERT)};",
)

# Stores the entity as the domain made it, if the row is still at the version it was loaded at.
SAVE_TASK: Final = SqlFunction(
    name="taskapi_save_task",
    params=(
        _OWNER,
        _TASK_ID,
        _EXPECTED_VERSION,
        _TITLE,
        _DESCRIPTION,
        _DUE_AT,
        _PRIORITY,
        _TAGS,
        _COMPLETED,
        _COMPLETED_AT,
        _UPDATED_AT,
        _VERSION,
    ),
    returns=f"SETOF {_tasks.name}",
    body=f"{_OWNERS_LOCK}\nRETURN QUERY "
    + _sql(
        update(_tasks)
        .where(*_OWNED, _c.version == _EXPECTED_VERSION)
        .values(
            title=_TITLE,
            description=_DESCRIPTION,
            due_at=_DUE_AT,
            priority=_PRIORITY,
            tags=_TAGS,
            completed=_COMPLETED,
            completed_at=_COMPLETED_AT,
            updated_at=_UPDATED_AT,
            version=_VERSION,
        )
        .returning(*TASK_COLUMNS)
    )
    + ";",
)

# (true, version) when deleted; (false, current version) when the version condition failed; no
# row when there is no such task.
DELETE_TASK: Final = SqlFunction(
    name="taskapi_delete_task",
    params=(_OWNER, _TASK_ID, _EXPECTED_VERSIONS),
    returns="TABLE (deleted BOOLEAN, version BIGINT)",
    body=(
        f"{_OWNERS_LOCK}\nRETURN QUERY "
        + _sql(
            delete(_tasks)
            .where(
                *_OWNED,
                or_(_EXPECTED_VERSIONS.is_(None), _c.version == any_(_EXPECTED_VERSIONS)),
            )
            .returning(true().label("deleted"), _c.version)
        )
        + ";\nIF NOT FOUND THEN\nRETURN QUERY "
        + _sql(select(false().label("deleted"), _c.version).where(*_OWNED))
        + ";\nEND IF;"
    ),
)

_CLAIM_KEY = (
    pg_insert(_keys)
    .values(user_id=_OWNER, key=_KEY, fingerprint=_FINGERPRINT, task=null(), created_at=_AT)
    .on_conflict_do_update(
        index_elements=[_keys.c.user_id, _keys.c.key],
        set_={"fingerprint": _FINGERPRINT, "task": null(), "created_at": _AT},
        # An expired key is taken over as if it were new.
        where=_keys.c.created_at < _EXPIRED_BEFORE,
    )
    .returning(_keys.c.key)
)
_THIS_KEY = (_keys.c.user_id == _OWNER, _keys.c.key == _KEY)

# Claims the key (a key held by a transaction in flight makes this wait, up to the lock timeout,
# then see its outcome), then either creates the task and keeps it as the key's first response,
# or returns what the key holds: (false, its fingerprint, its task or no task). The caller
# decides what that means (replay, conflict, in progress).
CREATE_TASK_ONCE: Final = SqlFunction(
    name="taskapi_create_task_once",
    params=(*_NEW_TASK, _KEY, _FINGERPRINT, _AT, _EXPIRED_BEFORE, _MAX_TASKS),
    returns=f"TABLE (claimed BOOLEAN, fingerprint TEXT, {_TASK_TABLE_COLUMNS})",
    declare="\n".join(
        (
            "taken TEXT;",
            "kept_fingerprint TEXT;",
            "kept_task JSONB;",
            f"stored {_tasks.name};",
            "waits TEXT := current_setting('lock_timeout');",
        )
    ),
    body="\n".join(
        (
            f"PERFORM set_config('lock_timeout', '{IDEMPOTENCY_WAIT}', true);",
            f"{_sql(_CLAIM_KEY)} INTO taken;",
            "IF taken IS NULL THEN",
            _sql(select(_keys.c.fingerprint, _keys.c.task).where(*_THIS_KEY))
            + " INTO kept_fingerprint, kept_task;",
            "RETURN QUERY SELECT false, kept_fingerprint, kept.* FROM"  # noqa: S608  # no input
            f" jsonb_populate_record(NULL::{_tasks.name}, kept_task) AS kept;",
            "RETURN;",
            "END IF;",
            # The key's wait ends here: queued behind the owner's other writes, this waits as any
            # creation does (up to the statement timeout: a 503, not a 409).
            "PERFORM set_config('lock_timeout', waits, true);",
            _WITHIN_LIMIT,
            f"{_sql(_INSERT)} INTO stored;",
            _sql(
                update(_keys).where(*_THIS_KEY).values(task=func.to_jsonb(literal_column("stored")))
            )
            + ";",
            "RETURN QUERY SELECT true, NULL::TEXT, (stored).*;",
        )
    ),
)


def _as_tombstone(column: ColumnClause[Any]) -> str:
    """What a deletion puts in a task column of the feed: the id, owner and place; else NULL."""
    kept = {"id": "task_id", "user_id": "user_id", "change_seq": "change_seq"}
    if column.name in kept:
        return kept[column.name]
    return f"NULL::{_sql(column.type)}"


_LATEST: Final = " ".join(
    (
        "SELECT coalesce(greatest(",
        f"(SELECT max(change_seq) FROM {_tasks.name} WHERE user_id = p_owner),",  # noqa: S608  # PL/pgSQL text from fixed parts
        f"(SELECT max(change_seq) FROM {_tombstones.name} WHERE user_id = p_owner)), 0)",  # noqa: S608  # PL/pgSQL text from fixed parts
    )
)

# A page of the owner's change feed after (p_after_seq, p_after_id): tasks written since, in
# their latest state, and deletions since (none at or below p_floor, whose tasks the client never
# held; none at all when p_floor is NULL, the start of a first sync), in feed order. Every row
# also brings the place the feed started after and the owner's latest place, as of the statement's
# one snapshot; no change: one row without a task, carrying only those.
LIST_CHANGES: Final = SqlFunction(
    name="taskapi_list_changes",
    params=(_OWNER, _AFTER_SEQ, _AFTER_ID, _FLOOR, _LIMIT),
    returns=f"TABLE ({_TASK_TABLE_COLUMNS}, deleted_at TIMESTAMP WITH TIME ZONE,"
    " horizon BIGINT, latest BIGINT)",
    body="\n".join(
        (
            "RETURN QUERY SELECT page.*, horizon.starts_after, latest.seq FROM",
            f"(SELECT starts_after FROM {_horizon.name}) AS horizon",  # noqa: S608  # PL/pgSQL text from fixed parts
            f"CROSS JOIN ({_LATEST} AS seq) AS latest",
            "LEFT JOIN (",
            f"(SELECT {_COLUMNS}, NULL::TIMESTAMP WITH TIME ZONE AS deleted_at"  # noqa: S608  # PL/pgSQL text from fixed parts
            f" FROM {_tasks.name} WHERE user_id = p_owner"
            " AND (change_seq, id) > (p_after_seq, p_after_id)"
            " ORDER BY change_seq, id LIMIT p_limit)",
            "UNION ALL",
            f"(SELECT {', '.join(_as_tombstone(c) for c in TASK_COLUMNS)}, deleted_at"  # noqa: S608  # PL/pgSQL text from fixed parts
            f" FROM {_tombstones.name} WHERE user_id = p_owner"
            " AND change_seq > greatest(p_after_seq, p_floor) AND p_floor IS NOT NULL"
            " ORDER BY change_seq LIMIT p_limit)",
            ") AS page ON true",
            "ORDER BY page.change_seq, page.id LIMIT p_limit;",
        )
    ),
)


# Which of these owners have a change after p_after_seq, each checked as that owner (row-level
# security binds every probe); and, last, one row without an owner carrying the feed's last place.
# The event streams' poll, where LISTEN is not available: two calls a second per process.
CHANGED_OWNERS: Final = SqlFunction(
    name="taskapi_changed_owners",
    params=(_OWNER, _OWNERS, _AFTER_SEQ),
    returns="TABLE (owner TEXT, place BIGINT)",
    body="\n".join(
        (
            "FOREACH p_owner IN ARRAY p_owners LOOP",
            _AS_OWNER,
            f"IF EXISTS (SELECT FROM {_tasks.name} WHERE user_id = p_owner"
            " AND change_seq > p_after_seq)",
            f"OR EXISTS (SELECT FROM {_tombstones.name} WHERE user_id = p_owner"
            " AND change_seq > p_after_seq) THEN",
            "owner := p_owner;",
            "RETURN NEXT;",
            "END IF;",
            "END LOOP;",
            "RETURN QUERY SELECT NULL::TEXT, last_value FROM task_change_seq;",
        )
    ),
)


# Marks these owners as streamed until p_seconds from now (a lease the listener renews), so that
# their writes NOTIFY, and says for each what it did. A lease that outlives this call by a margin
# (any write's check meanwhile still sees it) is extended: 'extended'. Else a lease is taken under
# the owner's lock: a write in flight commits before it, and is read by the wake that must follow;
# every later write sees it: 'taken'. An owner whose lock a writer holds is skipped, never waited
# for (one long transaction must not hold up every other owner's lease): 'busy', to try again.
LEASE_MARGIN: Final = "10 seconds"
_LEASE_END: Final = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, _SECONDS)
WATCH_OWNERS: Final = SqlFunction(
    name="taskapi_watch_owners",
    params=(_OWNER, _OWNERS, _SECONDS),
    returns="TABLE (owner TEXT, lease TEXT)",
    body="\n".join(
        (
            "FOREACH p_owner IN ARRAY p_owners LOOP",
            _AS_OWNER,
            "owner := p_owner;",
            _sql(
                update(_watches)
                .where(
                    _watches.c.user_id == _OWNER,
                    _watches.c.until > func.now() + text(f"interval '{LEASE_MARGIN}'"),
                )
                .values(until=func.greatest(_watches.c.until, _LEASE_END))
            )
            + ";",
            "IF FOUND THEN",
            "lease := 'extended';",
            f"ELSIF pg_try_advisory_xact_lock({_OWNERS_LOCK_KEY}) THEN",
            _sql(
                pg_insert(_watches)
                .values(user_id=_OWNER, until=_LEASE_END)
                .on_conflict_do_update(
                    index_elements=[_watches.c.user_id],
                    set_={"until": literal_column("excluded.until")},
                )
                .inline()  # nothing to return (a key given as an expression would be fetched)
            )
            + ";",
            "lease := 'taken';",
            "ELSE",
            "lease := 'busy';",
            "END IF;",
            "RETURN NEXT;",
            "END LOOP;",
        )
    ),
)


_THIS_OWNERS_STREAMS = _streams.c.user_id == _OWNER

# Takes one of the owner's p_most places for an event stream, leased for p_seconds; false when
# they all hold live leases (on any replica). Lapsed leases (a replica that died) are dropped
# first. Opens of one owner queue on a lock of their own (not the writers'), so two cannot both
# take the last place.
OPEN_STREAM: Final = SqlFunction(
    name="taskapi_open_stream",
    params=(_OWNER, _STREAM, _MOST, _SECONDS),
    returns="BOOLEAN",
    body="\n".join(
        (
            "PERFORM pg_advisory_xact_lock(hashtextextended(p_owner, 1));",
            _sql(delete(_streams).where(_THIS_OWNERS_STREAMS, _streams.c.until <= func.now()))
            + ";",
            "IF ("
            + _sql(select(func.count()).select_from(_streams).where(_THIS_OWNERS_STREAMS))
            + ") >= p_most THEN",
            "RETURN false;",
            "END IF;",
            _sql(
                insert(_streams)
                .values(user_id=_OWNER, stream_id=_STREAM, until=_LEASE_END)
                .inline()  # nothing to return
            )
            + ";",
            "RETURN true;",
        )
    ),
)

# Renews the leases of streams still open: p_streams[i] is p_owners[i]'s, each written as its
# owner. Returns the streams whose place is gone (taken over after it lapsed, or the user's data
# erased): never taken again here, where the limit is not checked.
_KEPT_STREAM = literal_column("p_streams[i]", Uuid())
KEEP_STREAMS: Final = SqlFunction(
    name="taskapi_keep_streams",
    params=(_OWNER, _OWNERS, _STREAMS, _SECONDS),
    returns="TABLE (stream UUID)",
    declare="i INTEGER;",
    body="\n".join(
        (
            "FOR i IN 1 .. coalesce(array_length(p_owners, 1), 0) LOOP",
            "p_owner := p_owners[i];",
            _AS_OWNER,
            _sql(
                update(_streams)
                .where(_THIS_OWNERS_STREAMS, _streams.c.stream_id == _KEPT_STREAM)
                .values(until=_LEASE_END)
            )
            + ";",
            "IF NOT FOUND THEN",
            "stream := p_streams[i];",
            "RETURN NEXT;",
            "END IF;",
            "END LOOP;",
        )
    ),
)

# Gives a closed stream's place back.
CLOSE_STREAM: Final = SqlFunction(
    name="taskapi_close_stream",
    params=(_OWNER, _STREAM),
    returns="VOID",
    body=_sql(delete(_streams).where(_THIS_OWNERS_STREAMS, _streams.c.stream_id == _STREAM)) + ";",
)


FUNCTIONS: Final = (
    GET_TASK,
    LIST_TASKS,
    INSERT_TASK,
    SAVE_TASK,
    DELETE_TASK,
    CREATE_TASK_ONCE,
    LIST_TAGS,
    LIST_CHANGES,
    CHANGED_OWNERS,
    WATCH_OWNERS,
    OPEN_STREAM,
    KEEP_STREAMS,
    CLOSE_STREAM,
)
"""Every function, as migrations 0004 to 0011 (re)created them."""


if __name__ == "__main__":
    # Prints the DDL to freeze into a new migration when a statement changes.
    for function in FUNCTIONS:
        print(function.ddl(), end=";\n\n")  # noqa: T201  # the output is the point
