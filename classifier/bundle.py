"""Bundles: one directory per trained version, `bundle.joblib` + `manifest.json` (+ a model card).

The manifest says what the artifact is (version, library versions, data sources with row counts
and hashes, thresholds, metrics) and carries the artifact's SHA-256, so a truncated or edited file
is refused before unpickling. Pickles only load reliably under the scikit-learn version that
wrote them, so a mismatch is refused with the fix spelled out instead of failing later in odd ways.
Only load bundles you built yourself: unpickling runs code.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import sklearn

from classifier.decision import Policy
from classifier.errors import BundleError, BundleNotFound, BundlesBusy, IncompatibleBundle

# 2: attribute calibration takes log sigmoid(toxicity logit); 3: the plug stacker; 4: toxicity's
# calibration takes the most toxic word's logit. A format-3 bundle is read as one whose toxicity
# calibration has no second input (c = 0), which is what it is; an older Moderato refuses format 4
# rather than scoring it with the wrong second input.
FORMAT = 4
READABLE_FORMATS = (3, 4)
ARTIFACT = "bundle.joblib"
MANIFEST = "manifest.json"
DEFAULT_BUNDLE_DIR = Path(__file__).resolve().parent / "bundles" / "default"


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: the unpickled artifact and its manifest."""

    path: Path
    artifact: dict[str, Any]
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def policy(self) -> Policy:
        return Policy.from_dict({"thresholds": self.manifest["thresholds"], "mode": "enforce"})


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    import numpy
    import scipy

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


def new_version(prefix: str = "m") -> str:
    """A sortable version name: m20261125-170402."""
    return f"{prefix}{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def save_bundle(artifact: dict[str, Any], manifest: dict[str, Any], directory: Path) -> Path:
    """Write artifact + manifest into `directory` (created); returns the directory.

    Each file is written beside its final name and moved over it (`os.replace`), so an interrupted
    save (Ctrl-C during the seconds of xz compression, a full disk) leaves the previous bundle whole
    instead of a half-written artifact, and a reader never sees a partial file. Only between the
    two renames can a reader meet a new artifact with the old manifest, which it refuses as damaged
    (the manifest holds the artifact's SHA-256)."""
    directory.mkdir(parents=True, exist_ok=True)
    artifact_path = directory / ARTIFACT
    staged_artifact = directory / f".{ARTIFACT}.partial"
    staged_manifest = directory / f".{MANIFEST}.partial"
    try:
        joblib.dump(artifact, staged_artifact, compress=("xz", 3))
        full = {
            **manifest,
            "format": FORMAT,
            "libraries": library_versions(),
            "artifact": {
                "file": ARTIFACT,
                "sha256": sha256_file(staged_artifact),
                "bytes": staged_artifact.stat().st_size,
            },
        }
        staged_manifest.write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(staged_artifact, artifact_path)
        os.replace(staged_manifest, directory / MANIFEST)
    finally:
        staged_artifact.unlink(missing_ok=True)
        staged_manifest.unlink(missing_ok=True)
    return directory


def read_manifest(path: str | Path) -> dict[str, Any]:
    directory = Path(path)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BundleNotFound(
            f"no bundle at {directory}: {MANIFEST} is missing (train one with `python scripts/train.py`)",
            path=str(directory),
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IncompatibleBundle(f"{manifest_path} is not valid JSON: {exc}", path=str(directory)) from exc
    if not isinstance(manifest, dict):
        raise IncompatibleBundle(f"{manifest_path} is not a JSON object", path=str(directory))
    return manifest


#: Beside a candidate's manifest: what the promotion gate said of it (written by scripts/retrain.py).
GATE_FILE = "gate.json"


def bundle_rows(bundles_dir: Path) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(version, manifest, gate) for each bundle directory under `bundles_dir`, by name.

    A directory without a readable manifest is skipped; a missing or damaged gate file (a bundle
    from scripts/train.py, or a retrain killed while writing it) reads as {}."""
    rows = []
    directories = sorted(bundles_dir.iterdir()) if bundles_dir.is_dir() else []
    for directory in directories:
        try:
            manifest = read_manifest(directory)
        except BundleError:
            continue
        try:
            gate = json.loads((directory / GATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            gate = {}
        rows.append((directory.name, manifest, gate if isinstance(gate, dict) else {}))
    return rows


@contextmanager
def bundles_lock(lock_file: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the bundles' lock file, waiting up to `wait` seconds for it (else BundlesBusy).

    Why: a retrain writes its candidate minutes before it promotes it, and `moderato models prune`
    deletes bundle directories nothing serves: run together, prune could delete the candidate the
    retrain is about to promote, or a version `models promote` has just checked. An advisory lock
    (flock: POSIX, one host) serialises them; a process that dies releases it.
    """
    import fcntl  # POSIX only, and only the operators' commands need it

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BundlesBusy(
                        f"another process is writing, promoting or pruning bundles (it holds {lock_file}); "
                        "try again when it has finished"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_bundle(path: str | Path | None = None) -> Bundle:
    """Load and check a bundle directory; None means the default bundle shipped in the package."""
    directory = Path(path) if path is not None else DEFAULT_BUNDLE_DIR
    manifest = read_manifest(directory)
    fix = "retrain it with `python scripts/train.py` (or install the versions in its manifest)"
    if manifest.get("format") not in READABLE_FORMATS:
        readable = " or ".join(map(str, READABLE_FORMATS))
        raise IncompatibleBundle(
            f"bundle {directory} has format {manifest.get('format')!r}, this Moderato reads {readable}; {fix}",
            path=str(directory),
        )
    built_with = manifest.get("libraries", {}).get("scikit-learn")
    if built_with != sklearn.__version__:
        raise IncompatibleBundle(
            f"bundle {directory} was built with scikit-learn {built_with}, but {sklearn.__version__} is installed; "
            f"{fix}, e.g. `pip install scikit-learn=={built_with}`",
            path=str(directory),
        )
    artifact_path = directory / manifest.get("artifact", {}).get("file", ARTIFACT)
    if not artifact_path.is_file():
        raise BundleNotFound(f"bundle {directory} has no {artifact_path.name}; {fix}", path=str(directory))
    expected = manifest.get("artifact", {}).get("sha256")
    if expected != sha256_file(artifact_path):
        raise IncompatibleBundle(
            f"bundle {directory}: {artifact_path.name} does not match the SHA-256 in its manifest "
            f"(corrupted or edited); {fix}",
            path=str(directory),
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", category=sklearn.exceptions.InconsistentVersionWarning)
            artifact = joblib.load(artifact_path)
    except Exception as exc:  # noqa: BLE001 - unpickling can fail in many ways; all mean "unusable"
        raise IncompatibleBundle(f"bundle {directory} cannot be loaded ({exc}); {fix}", path=str(directory)) from exc
    if not isinstance(artifact, dict) or "vectorizer" not in artifact:
        raise IncompatibleBundle(f"bundle {directory} does not hold a Moderato artifact; {fix}", path=str(directory))
    return Bundle(directory, artifact, manifest)
