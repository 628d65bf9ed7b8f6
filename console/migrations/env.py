"""Alembic's entry point: always handed an open connection by ``console.migrate`` (never reads a URL)."""

from __future__ import annotations

from alembic import context

from console.records import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
