"""Periodic background work of a worker process (webhook delivery, retention purge).

task = PeriodicTask("webhooks", interval=2.0, fn=deliver); task.start()
task.wake()        # run now (e.g. right after a commit queued webhooks)
task.stop()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("moderato.background")


class PeriodicTask:
    """Runs `fn` every `interval` seconds on its own thread, or sooner when woken."""

    def __init__(self, name: str, *, interval: float, fn: Callable[[], object]) -> None:
        self.name = name
        self.interval = interval
        self.fn = fn
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"moderato-{self.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.fn()
            except Exception:  # a failed round is logged and retried next round, never fatal
                log.exception("background task failed", extra={"event": "background.failed", "task": self.name})
            self._wake.wait(self.interval)
