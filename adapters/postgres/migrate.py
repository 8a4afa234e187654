"""Apply, revert or report the Alembic migrations of a database (``taskapi migrate``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory

from adapters.postgres.engine import DatabaseOptions, create_unpooled_engine

_SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(options: DatabaseOptions) -> Config:
    """An Alembic configuration for this database, without any alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["database"] = options
    return config


def upgrade(options: DatabaseOptions, revision: str = "head") -> None:
    """Migrate the schema up to ``revision`` (all migrations by default)."""
    command.upgrade(alembic_config(options), revision)


def downgrade(options: DatabaseOptions, revision: str) -> None:
    """Revert the schema down to ``revision`` (``base`` removes everything)."""
    command.downgrade(alembic_config(options), revision)


@dataclass(frozen=True, slots=True)
class Revision:
    """One migration: its id and the first line of its docstring."""

    id: str
    title: str


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Where a database stands: the revision it is at, and the migrations it still lacks."""

    current: Revision | None
    pending: tuple[Revision, ...]  # oldest first
    head: Revision


def _oldest_first(script: ScriptDirectory) -> list[Script]:
    return list(reversed(list(script.walk_revisions())))


def known_revisions() -> tuple[str, ...]:
    """The ids of every migration here, oldest first (no database needed)."""
    return tuple(revision.revision for revision in _oldest_first(ScriptDirectory(str(_SCRIPTS))))


def status(options: DatabaseOptions) -> MigrationStatus:
    """Read the database's revision (connecting, changing nothing) against the migrations here."""
    script = ScriptDirectory.from_config(alembic_config(options))
    current_ids = asyncio.run(_current_heads(options))
    # The current revisions and all their ancestors.
    applied = {revision.revision for revision in script.iterate_revisions(current_ids, "base")}
    every = _oldest_first(script)
    pending = tuple(_revision(rev) for rev in every if rev.revision not in applied)
    current = _revision(script.get_revision(current_ids[0])) if current_ids else None
    return MigrationStatus(current=current, pending=pending, head=_revision(every[-1]))


async def _current_heads(options: DatabaseOptions) -> tuple[str, ...]:
    engine = create_unpooled_engine(options)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: tuple(MigrationContext.configure(sync).get_current_heads())
            )
    finally:
        await engine.dispose()


def _revision(script: Script | None) -> Revision:
    assert script is not None  # noqa: S101  # a revision the database names exists here
    return Revision(script.revision, (script.doc or "").strip().splitlines()[0].rstrip("."))
