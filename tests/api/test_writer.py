"""The single writer: group commits, per-job savepoints, answers only after the commit."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlmodel import select

from api.errors import ServiceUnavailable
from api.schemas import BundlePromotion, Site
from api.store.bundles import promoted_version, record_promotion
from api.writer import Writer, request_hook


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


def _one_batch(writer: Writer, jobs: list) -> list:
    """Submit `jobs` so the writer takes them as one batch: a first job holds the thread until all are queued."""
    gate = threading.Event()
    held = writer.submit(lambda s: gate.wait(10))
    futures = [writer.submit(job) for job in jobs]
    gate.set()
    assert held.result(timeout=10)
    return futures


def test_a_job_failing_only_at_commit_loses_only_its_own_writes(db, writer):
    # The value passes Python but not the database (SQLite: OverflowError; PostgreSQL: DataError), and
    # only when the batch is flushed: the writer must pin it on the job, not die or fail the others.
    def overflowing(session):
        session.add(Site(name="too-long-lived", retention_days=10**20))
        return "queued"

    before, bad, after = _one_batch(
        writer,
        [
            lambda s: record_promotion(session=s, version="before").version,
            overflowing,
            lambda s: record_promotion(session=s, version="after").version,
        ],
    )
    assert before.result(timeout=10) == "before" and after.result(timeout=10) == "after"
    with pytest.raises(Exception, match=r"(?i)int|range"):
        bad.result(timeout=10)
    assert writer.running
    assert writer.submit(lambda s: record_promotion(session=s, version="later").version).result(timeout=10) == "later"
    with db.read_session() as session:
        assert sorted(p.version for p in session.exec(select(BundlePromotion))) == ["after", "before", "later"]
        assert session.exec(select(Site)).all() == []


def test_an_unexpected_batch_error_fails_that_batch_only_and_the_writer_goes_on(db, writer, monkeypatch, caplog):
    # Not a database error (those become 503): something nobody expected, in the fast path and the replay.
    real_run = Writer._run
    broken = threading.Event()
    broken.set()

    def run(self, batch, *, isolate):
        if broken.is_set():
            raise RuntimeError("disk on fire")
        return real_run(self, batch, isolate=isolate)

    monkeypatch.setattr(Writer, "_run", run)
    with caplog.at_level(logging.ERROR, logger="moderato.writer"):
        with pytest.raises(RuntimeError, match="disk on fire"):
            writer.submit(lambda s: record_promotion(session=s, version="lost").version).result(timeout=10)
    broken.clear()
    assert any(getattr(r, "event", None) == "writer.batch_failed" for r in caplog.records)
    assert writer.running
    assert writer.submit(lambda s: record_promotion(session=s, version="kept").version).result(timeout=10) == "kept"
    with db.read_session() as session:
        assert [p.version for p in session.exec(select(BundlePromotion))] == ["kept"]


def test_a_failing_commit_hook_does_not_stop_the_writer(db, writer):
    def hook() -> None:
        raise RuntimeError("hook broke")

    writer.on_commit("flag", hook)

    def flagged(session):
        request_hook(session, "flag")
        return record_promotion(session=session, version="hooked").version

    assert writer.submit(flagged).result(timeout=10) == "hooked"
    assert writer.submit(lambda s: record_promotion(session=s, version="next").version).result(timeout=10) == "next"
    assert writer.running
