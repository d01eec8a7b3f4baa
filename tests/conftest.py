"""Session fixtures shared by every test module.

`tiny_bundle` is a real bundle trained in a few seconds: the hand-written rows in tests/data plus a
fixed sample of training_data/'s train split (no shared corpora), so tests exercise the real
training and scoring code without the cost of the full corpora.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from classifier.dataset import Example, load_training_data, with_split
from classifier.training import TrainParams, train_bundle

REPO = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"


def tiny_training_rows() -> list[Example]:
    """All hand-written test rows (whatever their split) plus every 4th train row of training_data/."""
    rows = [replace(r, split="train") for r in load_training_data(TEST_DATA)]
    ours = with_split(load_training_data(REPO / "training_data"), "train")
    return rows + ours[::4]


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    params = TrainParams(min_df=1, max_features=60_000, validation_fraction=0.25)
    return train_bundle(tiny_training_rows(), out, params=params, version="tiny-test")
