"""SQL written by SQLAlchemy Core from the SQLModel tables, compiled once, run by asyncpg.

Statements outside the request path (the janitor's) are compiled here and run on asyncpg
connections directly: no ORM, no per-statement compilation, no greenlet hop. The request path's
statements are compiled with :data:`DIALECT` into SQL functions (``adapters.postgres.functions``).
The table definitions stay the single source of the column names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect constructor is untyped


@dataclass(frozen=True, slots=True)
class Sql:
    """A compiled statement: asyncpg's ``$n`` text and how to order its arguments."""

    text: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]

    def args(self, **values: Any) -> list[Any]:  # noqa: ANN401  # any bindable value
        """The positional arguments for ``text``, from named values (literals fill themselves)."""
        return [values[name] if name in values else self.defaults[name] for name in self.names]


def compile_sql(statement: ClauseElement) -> Sql:
    """Compile a Core statement for asyncpg."""
    compiled = statement.compile(dialect=DIALECT)
    assert isinstance(compiled, SQLCompiler)  # noqa: S101  # DML and SELECT compile with it
    return Sql(
        text=str(compiled),
        names=tuple(compiled.positiontup or ()),
        defaults=dict(compiled.params),
    )
