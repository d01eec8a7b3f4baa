"""Hot reload: every worker serves the bundle version promoted in the database, without a restart.

    reloader = BundleReloader(moderation=moderation, db=db, settings=settings)
    reloader.prime()                         # remember what is promoted now
    PeriodicTask("bundle-reload", interval=settings.bundle_check_seconds, fn=reloader.check).start()
    reloader.check(force=True)               # POST /v1/admin/reload

A check is one indexed query for the newest `bundle_promotion` row. When it names another version,
the new bundle is loaded on the background thread (never on a request), then swapped in with a
single attribute assignment on `moderation.engine`. A request takes its engine once, at the start
(`Moderation.current_engine`), so requests in flight finish on the bundle they started with and
new ones get the new bundle; nothing fails. A bundle that cannot be loaded leaves the current one
in place and is not retried until the promotion changes again (or a forced reload).

`MODERATO_BUNDLE` pins a bundle directory: then nothing is reloaded.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from api.config import Settings
from api.db import Database
from api.moderation import Moderation
from api.store.bundles import promoted_version
from classifier import Engine
from classifier.bundle import DEFAULT_BUNDLE_DIR
from classifier.errors import BundleError

log = logging.getLogger("moderato.reload")

#: A promotion of this name means "the bundle packaged with Moderato" (what rollback returns to).
DEFAULT_VERSION = "default"


def bundle_dir(settings: Settings, version: str | None) -> Path:
    """Where the bundle of a promoted `version` lives (None or `default`: the packaged bundle)."""
    if version is None or version == DEFAULT_VERSION:
        return DEFAULT_BUNDLE_DIR
    return settings.bundles_dir / version


def current_bundle_dir(settings: Settings, db: Database) -> Path:
    """The bundle the service serves: MODERATO_BUNDLE, else the promoted version, else the packaged one."""
    if settings.bundle is not None:
        return settings.bundle
    with db.read_session() as session:
        return bundle_dir(settings, promoted_version(session=session))


@dataclass(frozen=True)
class ReloadResult:
    """What a check did: `version` is served now; `changed` if it was swapped in by this check."""

    version: str | None
    previous: str | None
    promoted: str | None
    changed: bool
    error: str | None = None


class BundleReloader:
    """Keeps `moderation.engine` on the promoted bundle (see the module docstring)."""

    def __init__(self, *, moderation: Moderation, db: Database, settings: Settings) -> None:
        self.moderation = moderation
        self.db = db
        self.settings = settings
        self._lock = threading.Lock()
        self._seen: str | None = None
        self._failed: str | None = None

    def _promoted(self) -> str | None:
        with self.db.read_session() as session:
            return promoted_version(session=session)

    def prime(self) -> None:
        """Remember the promotion in force now (the lifespan loads that bundle itself)."""
        self._seen = self._promoted()

    def _serving(self) -> str | None:
        engine = self.moderation.engine
        return engine.version if engine is not None else None

    def check(self, *, force: bool = False) -> ReloadResult:
        """Swap in the promoted bundle if the promotion changed since the last check (or `force`)."""
        with self._lock:
            previous = self._serving()
            if self.settings.bundle is not None:
                return ReloadResult(previous, previous, None, changed=False)
            promoted = self._promoted()
            unchanged = promoted == self._seen and self.moderation.engine is not None
            if not force and (unchanged or promoted == self._failed):
                return ReloadResult(previous, previous, promoted, changed=False)
            path = bundle_dir(self.settings, promoted)
            engine = self.moderation.engine
            # Nothing promoted yet: keep whatever the lifespan loaded (the packaged bundle in production).
            if engine is not None and (promoted is None or engine.bundle.path.resolve() == path.resolve()):
                self._seen, self._failed = promoted, None
                return ReloadResult(previous, previous, promoted, changed=False)
            try:
                new = Engine.load(path)
            except BundleError as exc:
                self._failed = promoted
                log.error(
                    "promoted bundle cannot be loaded; keeping the current one",
                    extra={
                        "event": "bundle.reload_failed",
                        "version": promoted,
                        "serving": previous,
                        "error": str(exc),
                    },
                )
                return ReloadResult(previous, previous, promoted, changed=False, error=str(exc))
            self.moderation.engine = new  # one assignment: requests in flight keep the engine they took
            self._seen, self._failed = promoted, None
            log.info(
                "bundle reloaded",
                extra={"event": "bundle.reloaded", "version": new.version, "previous": previous},
            )
            return ReloadResult(new.version, previous, promoted, changed=True)
