"""PostgreSQL adapter: SQLModel table, Neon-aware engine, the task repository, migrations."""
