"""Database engines, sessions and migrations.

Two engines per process over one database: `reader` for request-time reads, and `writer`, used only
by the single writer thread (see `api.writer`) and by CLI commands. On SQLite the writer begins
transactions with `BEGIN IMMEDIATE` (so concurrent processes queue on the lock instead of failing
with SQLITE_BUSY on upgrade) and every connection uses WAL and a busy timeout.

    db = Database.from_url(settings.database_url)
    migrate(db.url)                 # alembic upgrade head
    with db.read_session() as session: ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.pool import NullPool
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 10_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, immediate: bool = False, pool_size: int = 20) -> Engine:
    """An engine for `url`; on SQLite with WAL, foreign keys, busy timeout and explicit BEGIN."""
    if not is_sqlite(url):
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=pool_size,
        max_overflow=pool_size,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (not pysqlite) emit BEGIN, so SAVEPOINT and BEGIN IMMEDIATE work.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


@dataclass
class Database:
    """The reader and writer engines of one process."""

    url: str
    reader: Engine
    writer: Engine

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(url=url, reader=make_engine(url), writer=make_engine(url, immediate=True, pool_size=2))

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with Session(self.reader) as session:
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session that commits on success (CLI commands; the service uses the writer thread)."""
        with Session(self.writer, expire_on_commit=False) as session:
            yield session
            session.commit()

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.reader.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.reader.dispose()
        self.writer.dispose()


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the migrations shipped inside the `api` package."""
    config = Config(str(resources.files("api") / "alembic.ini"))
    config.set_main_option("script_location", str(resources.files("api") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def migrate(url: str, revision: str = "head") -> str | None:
    """Bring the schema at `url` up to `revision` (creating the SQLite file if needed) and return the
    revision it is at afterwards: upgrading never goes back, so that may be past `revision`."""
    engine = make_engine(url, immediate=True) if is_sqlite(url) else create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
