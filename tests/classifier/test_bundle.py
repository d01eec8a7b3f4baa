"""Bundles refuse to load when damaged or made by other library versions, naming the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from classifier import Engine
from classifier.bundle import DEFAULT_BUNDLE_DIR, load_bundle, read_manifest
from classifier.errors import BundleNotFound, IncompatibleBundle


@pytest.fixture
def copy(tiny_bundle, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, target)
    return target


def test_manifest_records_versions_thresholds_sources_and_hash(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    assert manifest["version"] == "tiny-test"
    assert {"python", "scikit-learn", "numpy"} <= set(manifest["libraries"])
    assert set(manifest["thresholds"]) == {"spam", "toxicity", "off_topic"}
    for limits in manifest["thresholds"].values():
        assert 0 <= limits["hold"] <= limits["reject"] <= 1
    assert len(manifest["artifact"]["sha256"]) == 64


def test_missing_bundle(tmp_path):
    with pytest.raises(BundleNotFound, match="train one"):
        load_bundle(tmp_path / "nope")


def test_corrupted_artifact_is_refused(copy):
    artifact = copy / "bundle.joblib"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(IncompatibleBundle, match="SHA-256"):
        load_bundle(copy)


def test_other_sklearn_version_is_refused_with_the_fix(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["libraries"]["scikit-learn"] = "0.24.2"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IncompatibleBundle, match=r"scikit-learn 0\.24\.2.*pip install scikit-learn==0\.24\.2"):
        load_bundle(copy)


def test_bundle_formats_outside_the_readable_ones_are_refused_with_the_fix(copy):
    """Format 3 predates toxicity's second calibration input and is still read: its toxicity
    calibration has c = 0, which scores from the document head alone, as its Moderato did
    (tests/classifier/test_engine.py checks that scoring)."""
    manifest = json.loads((copy / "manifest.json").read_text())
    for other in (2, 5, None):
        (copy / "manifest.json").write_text(json.dumps({**manifest, "format": other}))
        with pytest.raises(IncompatibleBundle, match="reads 3 or 4.*retrain it"):
            load_bundle(copy)
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format": 3}))
    assert load_bundle(copy).manifest["format"] == 3


def test_garbage_manifest_is_refused(copy):
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(IncompatibleBundle, match="not valid JSON"):
        load_bundle(copy)


def test_default_bundle_ships_in_the_package_and_is_small():
    size = sum(p.stat().st_size for p in DEFAULT_BUNDLE_DIR.iterdir())
    assert size < 50 * 1024 * 1024
    assert Engine.load().version == read_manifest(DEFAULT_BUNDLE_DIR)["version"]


def test_an_interrupted_save_leaves_the_previous_bundle_whole(copy, monkeypatch):
    import classifier.bundle as bundle_module

    before = Engine.load(copy)
    artifact = load_bundle(copy).artifact
    manifest = read_manifest(copy)

    def dump_half_then_stop(value, path, **kwargs):
        Path(path).write_bytes(b"half an artifact")
        raise KeyboardInterrupt  # Ctrl-C during the seconds of compression

    monkeypatch.setattr(bundle_module.joblib, "dump", dump_half_then_stop)
    with pytest.raises(KeyboardInterrupt):
        bundle_module.save_bundle(artifact, manifest, copy)
    after = Engine.load(copy)  # still loads: the artifact and its manifest were never touched
    assert after.version == before.version
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == []
    monkeypatch.undo()
    bundle_module.save_bundle(artifact, {**manifest, "version": "resaved"}, copy)
    assert Engine.load(copy).version == "resaved"
