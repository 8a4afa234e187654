"""Alembic migrations of the ``tasks`` schema (async env)."""
