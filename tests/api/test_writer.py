"""The single writer: group commits, per-job savepoints, answers only after the commit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlmodel import select

from api.errors import ServiceUnavailable
from api.schemas import BundlePromotion
from api.store.bundles import promoted_version, record_promotion
from api.writer import Writer


@pytest.fixture
def writer(db):
    w = Writer(db.writer, max_batch=64)
    w.start()
    yield w
    w.stop()


def test_concurrent_jobs_share_commits_and_are_visible_when_answered(db, writer):
    def job(i: int):
        version = writer.run_sync(lambda s: record_promotion(session=s, version=f"v{i}").version)
        # the answer comes after the commit: another connection sees the row already
        with db.reader.connect() as connection:
            seen = connection.execute(text("SELECT COUNT(*) FROM bundle_promotion WHERE version = :v"), {"v": version})
            return seen.scalar_one()

    with ThreadPoolExecutor(32) as pool:
        assert list(pool.map(job, range(200))) == [1] * 200
    assert writer.batches < 200, "concurrent jobs were grouped into fewer commits"
    with db.read_session() as session:
        assert len(session.exec(select(BundlePromotion)).all()) == 200


def test_a_failing_job_loses_only_its_own_writes(db, writer):
    def bad(session):
        record_promotion(session=session, version="half-done")
        raise ValueError("boom")

    good = writer.submit(lambda s: record_promotion(session=s, version="good").version)
    failing = writer.submit(bad)
    assert good.result() == "good"
    with pytest.raises(ValueError, match="boom"):
        failing.result()
    with db.read_session() as session:
        assert promoted_version(session=session) == "good"
        assert [p.version for p in session.exec(select(BundlePromotion))] == ["good"]


def test_stopped_writer_refuses_work(db):
    w = Writer(db.writer)
    with pytest.raises(ServiceUnavailable):
        w.run_sync(lambda s: None)
