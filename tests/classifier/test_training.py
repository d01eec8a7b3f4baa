"""Training refuses dev rows, tunes thresholds on its own validation slice, and is reproducible."""

from __future__ import annotations

import json

import pytest

from classifier.dataset import Example
from classifier.training import TrainParams, span_f1, train_bundle
from tests.conftest import tiny_training_rows


def test_dev_rows_are_refused(tmp_path):
    with pytest.raises(ValueError, match="train-split rows only"):
        train_bundle([Example("x", "moderato", "dev", {"spam": 0.0})], tmp_path / "b")


def test_same_inputs_and_seed_give_the_same_model(tiny_bundle, tmp_path):
    again = train_bundle(
        tiny_training_rows(),
        tmp_path / "again",
        params=TrainParams(min_df=1, max_features=60_000, validation_fraction=0.25),
        version="tiny-test",
    )
    first = json.loads((tiny_bundle / "manifest.json").read_text())
    second = json.loads((again / "manifest.json").read_text())
    assert first["thresholds"] == second["thresholds"]
    assert first["metrics"] == second["metrics"]


def test_span_f1_is_the_semeval_metric():
    assert span_f1(set(), set()) == 1.0
    assert span_f1({1}, set()) == 0.0
    assert span_f1({1, 2}, {2, 3}) == pytest.approx(0.5)
