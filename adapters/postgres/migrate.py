"""Apply or revert the Alembic migrations on a database (``taskapi migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from adapters.postgres.engine import DatabaseOptions

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
