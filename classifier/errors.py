"""Domain errors of the classifier, one tree so callers can catch at the level they need.

    ClassifierError
     ├── BundleError               a trained bundle cannot be used
     │    ├── BundleNotFound       no bundle at the given path
     │    └── IncompatibleBundle   made by another scikit-learn / format version, or corrupted
     ├── BundlesBusy               another process is writing, promoting or pruning bundles
     └── InputError                the text or article given to the engine is unusable

The API maps these once (BundleError -> 503, InputError -> 422); routes never catch them.
"""

from __future__ import annotations


class ClassifierError(Exception):
    """Root of every error the classifier raises on purpose."""


class BundleError(ClassifierError):
    """A bundle exists (or should) but cannot be loaded or used."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class BundleNotFound(BundleError):
    """No bundle directory or manifest at the path."""


class IncompatibleBundle(BundleError):
    """The bundle was built by other library versions, or its files are damaged."""


class BundlesBusy(ClassifierError):
    """Another process holds the bundles' lock file (`bundle.bundles_lock`)."""


class InputError(ClassifierError):
    """The comment or article cannot be scored (wrong type, empty, too long)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
