"""Fixtures for the API tests: every database test runs on SQLite and (when
MODERATO_TEST_POSTGRES_URL is set) on PostgreSQL, against a schema built by the Alembic migrations.

    client            TestClient around a running app (lifespan: writer, webhooks, ...)
    site / other_site  sites with API keys (NewSite: .site, .api_key, .webhook_secret)
    db                Database on the test schema (read/write sessions for assertions)
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from api.config import Settings
from api.db import Database, migrate
from api.main import create_app
from api.schemas import SiteCreate
from api.store.sites import NewSite, create_site
from classifier import Engine

POSTGRES_URL = os.environ.get("MODERATO_TEST_POSTGRES_URL")

#: The founding case: a genuine rant with an insurance plug in the middle.
FOUNDING_ARTICLE = {
    "id": "nk-outage",
    "title": "North Korea's internet goes dark",
    "body": "North Korea lost its connection to the internet on Monday, the country's only link to the "
    "outside world. Analysts debated whether a cyber attack or a technical failure caused the outage.",
}
PLUG = "My car insurance is currently only $25/month (from Insurance Panda) and renter's only $15/month (from Eagle)."
FOUNDING_TEXT = (
    "Both parties have been useless on North Korea for decades and this outage proves nobody has a plan. "
    + PLUG
    + " Anyway, sanctions clearly aren't working and someone should admit it."
)
HAM_TEXT = "It looks like both of their computers are down."


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the machine's environment or a .env file."""
    for name in list(os.environ):
        if name.startswith("MODERATO_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setitem(Settings.model_config, "env_file", None)


@pytest.fixture(scope="session")
def engine(tiny_bundle: Path) -> Engine:
    return Engine.load(tiny_bundle)


def _postgres_schema_url(base: str, schema: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this test session (PostgreSQL: a schema of its own)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'moderato.db'}"
        migrate(url)
        yield url
        return
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("MODERATO_TEST_POSTGRES_URL not set: .ci/run should have started PostgreSQL")
        pytest.skip("MODERATO_TEST_POSTGRES_URL not set")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = _postgres_schema_url(POSTGRES_URL, schema)
    migrate(url)
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def empty_tables(db: Database) -> None:
    tables = list(reversed(SQLModel.metadata.sorted_tables))
    with db.writer.begin() as connection:
        if db.writer.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(table.delete())


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.from_url(database_url)
    empty_tables(database)
    yield database
    database.dispose()


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url_override": database_url,
        "auto_migrate": False,
        "webhook_backoff_seconds": 0.05,
        "webhook_backoff_cap_seconds": 0.2,
        "webhook_poll_seconds": 0.05,
        "webhook_timeout_seconds": 2.0,
        "webhook_max_attempts": 4,
        "auth_cache_seconds": 0,
        "gil_switch_interval": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def app(settings: Settings, engine: Engine, db: Database) -> FastAPI:
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def new_site(db: Database, name: str = "daily-planet", **fields: Any) -> NewSite:
    with db.write_session() as session:
        return create_site(session=session, site_in=SiteCreate(name=name, **fields))


@pytest.fixture
def site(db: Database) -> NewSite:
    return new_site(db, "daily-planet", url="https://planet.example")


@pytest.fixture
def other_site(db: Database) -> NewSite:
    return new_site(db, "other-blog")


def auth(site_or_key: NewSite | str) -> dict[str, str]:
    key = site_or_key if isinstance(site_or_key, str) else site_or_key.api_key
    return {"Authorization": f"Bearer {key}"}


def moderate_body(
    text: str = FOUNDING_TEXT,
    comment_id: str | int | None = "c-1",
    *,
    author: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    comment: dict[str, Any] = {"text": text}
    if comment_id is not None:
        comment["id"] = comment_id
    if author is not None:
        comment["author"] = author
    body: dict[str, Any] = {"comment": comment}
    body.update(extra)
    return body


def row_counts(db: Database) -> dict[str, int]:
    with db.reader.connect() as connection:
        return {
            table.name: connection.execute(text(f"SELECT COUNT(*) FROM {table.name}")).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


#: Site overrides that make the verdict independent of the (tiny) bundle's scores.
ALWAYS = {
    "approve": {"hold": 1.0, "reject": 1.0},
    "hold": {"hold": 0.0, "reject": 1.0},
    "reject": {"hold": 0.0, "reject": 0.0},
}


def force_verdict(
    db: Database, site: NewSite, verdict: str, labels: tuple[str, ...] = ("spam", "toxicity", "off_topic")
) -> None:
    """Pin the site's thresholds so every comment gets `verdict` (scores stay the engine's)."""
    from api.schemas import Site

    with db.write_session() as session:
        row = session.get(Site, site.site.id)
        assert row is not None
        row.policy_overrides = dict.fromkeys(labels, ALWAYS[verdict])
        session.add(row)


@pytest.fixture(scope="session")
def default_engine() -> Engine:
    """The packaged default bundle (the real model); founding-case tests need it."""
    from classifier.errors import BundleError

    try:
        return Engine.load(None)
    except BundleError as exc:
        pytest.skip(f"packaged default bundle not available: {exc}")


def add_version(tiny_bundle: Path, settings: Settings, version: str) -> Path:
    """A copy of the tiny bundle under the data directory, renamed `version` (same artifact)."""
    out = settings.bundles_dir / version
    shutil.copytree(tiny_bundle, out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["version"] = version
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out
