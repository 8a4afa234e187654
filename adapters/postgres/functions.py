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
    Table,
    Text,
    any_,
    cast,
    delete,
    false,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.elements import ClauseElement, ColumnClause, ColumnElement
from sqlalchemy.types import TypeEngine

from adapters.postgres.mapper import TASK_COLUMNS
from adapters.postgres.row_security import API_ROLE, OWNER_SETTING
from adapters.postgres.sql import DIALECT
from adapters.postgres.tables import IdempotencyKeyRow, TaskRow

_tasks: Table = TaskRow.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at run time
_keys: Table = IdempotencyKeyRow.__table__  # type: ignore[attr-defined]  # as above
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
_AFTER_AT = _param("p_after_at", DateTime(timezone=True))
_AFTER_ID = _param("p_after_id", BigInteger())
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

TASK_LIMIT_SQLSTATE: Final = "TL001"
"""What a creation beyond the owner's task limit raises (a code of our own, class TL)."""


def _sql(element: ClauseElement | TypeEngine[Any]) -> str:
    """A statement (or a type) as PostgreSQL text, literals inlined (a body has no binds)."""
    if isinstance(element, TypeEngine):
        return str(element.compile(dialect=DIALECT))
    text = str(element.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))
    return "\n".join(line.rstrip() for line in text.splitlines())


_TASK_TABLE_COLUMNS: Final = ", ".join(f"{c.name} {_sql(c.type)}" for c in TASK_COLUMNS)


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
            f"PERFORM set_config('{OWNER_SETTING}', p_owner, true);\n"
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
        completed=false(),
        completed_at=null(),
        created_at=_AT,
        updated_at=_AT,
        version=1,
    )
    .returning(*TASK_COLUMNS)
)
_MATCHING = (_c.user_id == _OWNER, or_(_COMPLETED.is_(None), _c.completed == _COMPLETED))
_TOTAL = select(func.count()).select_from(_tasks).where(*_MATCHING)


def _page(*after: ColumnElement[bool]) -> str:
    """A page of the owner's tasks, in creation order, with how many match the filter."""
    return _sql(
        select(*TASK_COLUMNS, _TOTAL.scalar_subquery().label("total"))
        .where(*_MATCHING, *after)
        .order_by(_c.created_at, _c.id)
        .limit(_LIMIT)
    )


GET_TASK: Final = SqlFunction(
    name="taskapi_get_task",
    params=(_OWNER, _TASK_ID),
    returns=f"SETOF {_tasks.name}",
    body=f"RETURN QUERY {_sql(select(*TASK_COLUMNS).where(*_OWNED))};",
)

# A page and the number of tasks matching the filter; an empty page (past the end) still brings
# the count, as one row without a task. The first page and the next ones are separate statements,
# so that each is one range scan of the index whatever plan PL/pgSQL caches (a COALESCE of the
# parameters instead would not be leakproof, and row-level security keeps such a condition out
# of the index scan).
LIST_TASKS: Final = SqlFunction(
    name="taskapi_list_tasks",
    params=(_OWNER, _COMPLETED, _AFTER_AT, _AFTER_ID, _LIMIT),
    returns=f"TABLE ({_TASK_TABLE_COLUMNS}, total BIGINT)",
    body="\n".join(
        (
            "IF p_after_at IS NULL THEN",
            f"RETURN QUERY {_page()};",
            "ELSE",
            f"RETURN QUERY {_page(tuple_(_c.created_at, _c.id) > tuple_(_AFTER_AT, _AFTER_ID))};",
            "END IF;",
            "IF NOT FOUND THEN",
            "RETURN QUERY "
            + _sql(
                _TOTAL.with_only_columns(
                    *(cast(null(), c.type).label(c.name) for c in TASK_COLUMNS),
                    func.count().label("total"),
                )
            )
            + ";",
            "END IF;",
        )
    ),
)

# The owner's creations queue on a transaction lock, so two at the limit cannot both pass the
# count; over it, the exception undoes the whole call (a claimed idempotency key too).
_WITHIN_LIMIT: Final = "\n".join(
    (
        "PERFORM pg_advisory_xact_lock(hashtextextended(p_owner, 0));",
        "IF p_max_tasks IS NOT NULL AND"
        f" ({_sql(select(func.count()).select_from(_tasks).where(_c.user_id == _OWNER))})"
        " >= p_max_tasks THEN",
        f"RAISE EXCEPTION 'task limit reached' USING ERRCODE = '{TASK_LIMIT_SQLSTATE}';",
        "END IF;",
    )
)

INSERT_TASK: Final = SqlFunction(
    name="taskapi_insert_task",
    params=(_OWNER, _TITLE, _DESCRIPTION, _AT, _MAX_TASKS),
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
        _COMPLETED,
        _COMPLETED_AT,
        _UPDATED_AT,
        _VERSION,
    ),
    returns=f"SETOF {_tasks.name}",
    body="RETURN QUERY "
    + _sql(
        update(_tasks)
        .where(*_OWNED, _c.version == _EXPECTED_VERSION)
        .values(
            title=_TITLE,
            description=_DESCRIPTION,
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
        "RETURN QUERY "
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
    params=(_OWNER, _KEY, _FINGERPRINT, _TITLE, _DESCRIPTION, _AT, _EXPIRED_BEFORE, _MAX_TASKS),
    returns=f"TABLE (claimed BOOLEAN, fingerprint TEXT, {_TASK_TABLE_COLUMNS})",
    declare=f"taken TEXT;\nkept_fingerprint TEXT;\nkept_task JSONB;\nstored {_tasks.name};",
    settings=(f"lock_timeout = '{IDEMPOTENCY_WAIT}'",),
    body="\n".join(
        (
            f"{_sql(_CLAIM_KEY)} INTO taken;",
            "IF taken IS NULL THEN",
            _sql(select(_keys.c.fingerprint, _keys.c.task).where(*_THIS_KEY))
            + " INTO kept_fingerprint, kept_task;",
            "RETURN QUERY SELECT false, kept_fingerprint, kept.* FROM"  # noqa: S608  # no input
            f" jsonb_populate_record(NULL::{_tasks.name}, kept_task) AS kept;",
            "RETURN;",
            "END IF;",
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


FUNCTIONS: Final = (GET_TASK, LIST_TASKS, INSERT_TASK, SAVE_TASK, DELETE_TASK, CREATE_TASK_ONCE)
"""Every function, in the order migration 0004 created them (0006 replaced the two creating)."""


if __name__ == "__main__":
    # Prints the DDL to freeze into a new migration when a statement changes.
    for function in FUNCTIONS:
        print(function.ddl(), end=";\n\n")  # noqa: T201  # the output is the point
