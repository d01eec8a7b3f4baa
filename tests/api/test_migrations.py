"""Alembic migrations build exactly the schema the models describe, on SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlmodel import SQLModel

from api.db import Database, alembic_config, make_engine, migrate
from api.schemas import SiteCreate
from api.store.sites import authenticate_moderator, create_moderator, create_site


def test_migrated_schema_matches_the_models(db):
    with db.reader.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_migrating_again_is_a_no_op(database_url, db):
    migrate(database_url)
    with db.reader.connect() as connection:
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert current == ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def test_sqlite_uses_wal_and_foreign_keys(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh' / 'moderato.db'}"
    migrate(url)
    database = Database.from_url(url)
    try:
        with database.reader.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000
    finally:
        database.dispose()


def test_a_moderator_made_before_session_epochs_keeps_working_after_the_upgrade(tmp_path):
    """Migration 0008 adds `moderator.session_epoch` to existing rows (0): nobody is locked out."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate(url)
    database = Database.from_url(url)
    try:
        with database.write_session() as session:
            create_site(session=session, site_in=SiteCreate(name="old-blog"))
            _, secret = create_moderator(session=session, site_name="old-blog", name="ada")
        database.dispose()
        engine = make_engine(url, immediate=True)
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0007")
            assert "session_epoch" not in connection.exec_driver_sql("SELECT * FROM moderator").keys()
        engine.dispose()
        migrate(url)
        database = Database.from_url(url)
        with database.read_session() as session:
            moderator = authenticate_moderator(session=session, secret=secret)
        assert moderator.name == "ada" and moderator.session_epoch == 0
    finally:
        database.dispose()
