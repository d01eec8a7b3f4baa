"""The single writer: every write of the service goes through one thread that group-commits.

A request submits a job (a function of a Session), and waits on a future. The thread takes every
job queued at that moment (up to `max_batch`), runs each inside its own SAVEPOINT, commits once,
and only then resolves the futures: nobody hears "stored" before the commit is durable, yet a burst
of 32 concurrent requests costs one fsync instead of 32 lock hand-offs.

    writer = Writer(db.writer, max_batch=256); writer.start()
    verdict = await writer.run(lambda session: store_assessment(session=session, ...))
    verdict = writer.run_sync(job)          # from a worker thread (sync routes, CLI-ish code)
    writer.stop()

Jobs first run together in one transaction without savepoints (the fast path). If one raises, or
the commit fails (a bad value may surface only when the batch is flushed, e.g. an int too large for
the column), the transaction is rolled back and the batch replayed with a SAVEPOINT per job (each
flushed when its savepoint is released), so the failing job loses only its own writes and gets its
exception; the rest still commit. Jobs must therefore be pure functions of the session (they may
run twice). If the replay's commit fails too, every job in the batch gets the error (a database
error as 503) and nothing of the batch is stored.

The thread never dies of a job or a batch: any unexpected error fails the futures of its batch
that are still waiting, is logged (`writer.batch_failed`), and the loop takes the next batch. A
dead writer would answer 503 to every later write and leave waiting requests hanging forever.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from api.errors import ServiceUnavailable

T = TypeVar("T")
log = logging.getLogger("moderato.writer")

#: A flag jobs set in `session.info` to ask for the commit hooks (e.g. "webhooks to send").
COMMIT_HOOK_FLAGS = "after_commit_flags"


@dataclass
class _Job:
    fn: Callable[[Session], Any]
    future: Future[Any] = field(default_factory=Future)


class Writer:
    """One thread owning all writes of this process; see the module docstring."""

    def __init__(self, engine: Engine, *, max_batch: int = 256) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.commit_hooks: dict[str, list[Callable[[], None]]] = {}
        self.batches = 0
        self.on_batch: Callable[[int, float], None] | None = None
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="moderato-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish every job already submitted, then end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def on_commit(self, flag: str, hook: Callable[[], None]) -> None:
        """Call `hook` after any commit whose jobs set `flag` (see `request_hook`)."""
        self.commit_hooks.setdefault(flag, []).append(hook)

    # -- submitting --------------------------------------------------------------------------

    def submit(self, fn: Callable[[Session], T]) -> Future[T]:
        job = _Job(fn)
        if not self.running:
            job.future.set_exception(ServiceUnavailable("Writer is not running"))
        else:
            self._queue.put(job)
        return job.future

    async def run(self, fn: Callable[[Session], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        return self.submit(fn).result()

    # -- the thread --------------------------------------------------------------------------

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            try:
                self._commit_batch(batch)
            except Exception as exc:  # the thread must outlive any batch; see the module docstring
                log.exception("writer batch failed", extra={"event": "writer.batch_failed", "jobs": len(batch)})
                _fail_waiting(batch, exc)

    def _commit_batch(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            try:
                # Fast path: the whole batch in one transaction, no savepoints.
                outcomes, flags = self._run(batch, isolate=False)
            except Exception:
                # A job raised, or the flush/commit did (which job is unknown): replay the batch with
                # a savepoint per job, so only the failing job is lost.
                outcomes, flags = self._run(batch, isolate=True)
        except SQLAlchemyError as exc:
            log.error("group commit failed", extra={"event": "writer.commit_failed", "jobs": len(batch)})
            error = ServiceUnavailable("Database unavailable")
            error.__cause__ = exc
            _fail_waiting(batch, error)
            return
        self.batches += 1
        for job, ok, value in outcomes:
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        # Everything below runs after the answers: a failure here is logged, and the batch stays stored.
        try:
            if self.on_batch is not None:
                self.on_batch(len(batch), time.perf_counter() - started)
        except Exception:
            log.exception("writer batch callback failed", extra={"event": "writer.hook_failed"})
        for flag in flags:
            for hook in self.commit_hooks.get(flag, ()):
                try:
                    hook()
                except Exception:
                    log.exception("writer commit hook failed", extra={"event": "writer.hook_failed", "flag": flag})

    def _run(self, batch: list[_Job], *, isolate: bool) -> tuple[list[tuple[_Job, bool, Any]], set[str]]:
        outcomes: list[tuple[_Job, bool, Any]] = []
        with Session(self.engine, expire_on_commit=False) as session:
            for job in batch:
                if not isolate:
                    try:
                        outcomes.append((job, True, job.fn(session)))
                    except Exception as exc:  # replayed in isolation by the caller
                        raise _JobFailed() from exc
                    continue
                try:
                    with session.begin_nested():
                        result = job.fn(session)
                    outcomes.append((job, True, result))
                except Exception as exc:  # handed to the waiting caller, not swallowed
                    outcomes.append((job, False, exc))
            flags = set(session.info.get(COMMIT_HOOK_FLAGS, ()))
            session.commit()
        return outcomes, flags


class _JobFailed(Exception):
    """A job raised during the fast path; the batch is replayed with savepoints."""


def _fail_waiting(batch: list[_Job], error: BaseException) -> None:
    """Hand `error` to every job of `batch` whose caller is still waiting (some may be answered)."""
    for job in batch:
        if not job.future.done():
            job.future.set_exception(error)


def request_hook(session: Session, flag: str) -> None:
    """From inside a job: run the writer's hooks for `flag` once this batch has committed."""
    session.info.setdefault(COMMIT_HOOK_FLAGS, set()).add(flag)
