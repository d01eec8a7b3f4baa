"""Alembic environment: migrations run online, on the connection `api.db.migrate` passes in
(or on one made from `sqlalchemy.url`). On PostgreSQL an advisory lock serialises workers that
start at the same time and would otherwise race to upgrade."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text
from sqlmodel import SQLModel

import api.schemas  # noqa: F401 - registers every table on SQLModel.metadata

target_metadata = SQLModel.metadata
MIGRATION_LOCK_ID = 0x6D6F6465  # "mode"


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


run_migrations_online()
