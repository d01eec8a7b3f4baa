"""The plug stacker: its flat trees must say what scikit-learn says, and its rows and labels must
describe the sentences the engine judges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from classifier import Article, Engine
from classifier.dataset import Example
from classifier.stacker import PLUG_FEATURES, PLUG_SIGNALS, Trees, plug_rows
from classifier.training import stacker_rows

ARTICLE = Article(
    "North Korea's internet goes dark",
    "North Korea's internet went down for nine hours on Monday. Experts suspect an attack or a power failure.",
)
PLUG = "My car insurance is currently only $25/month (from Insurance Panda) and renter's only $15/month (from Eagle)."
COMMENT = f"Nine hours without internet and they blame everyone but themselves. {PLUG} Anyway, both sides look bad."


@pytest.fixture(scope="module")
def engine(tiny_bundle):
    return Engine.load(tiny_bundle)


def test_flat_trees_equal_the_fitted_model():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 5))
    X[:, 4] = rng.integers(0, 2, size=600)  # a 0/1 column, like the signals
    X[:100, 1] = np.float32(0.25)  # many equal values: thresholds fall between float32 neighbours
    y = ((X[:, 0] > 0) & (X[:, 4] == 1) | (X[:, 1] > 1)).astype(int)
    model = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(X, y)
    trees = Trees.from_model(model, X[0])
    probe = np.vstack([X, rng.normal(size=(50, 5)) * 10])
    assert trees.decision_function(probe) == pytest.approx(model.decision_function(probe), abs=1e-9)
    assert trees.decision_function(probe[7:8])[0] == trees.decision_function(probe)[7]


def test_rows_cover_judged_sentences_only_and_name_their_signals():
    judged, rows = plug_rows(
        [["s:price", "b:only _name_"], [], ["s:novel_name", "s:contact"]],
        [-1.5, -math.inf, 2.0],
        0.5,
        [0.3, 0.0, 0.05],
        [0.2, 0.3, 0.4, 0.1, 1.0, 2.0, 7.0, 8.0],
    )
    assert judged == (0, 2)
    assert rows.shape == (2, len(PLUG_FEATURES))
    row = dict(zip(PLUG_FEATURES, rows[1], strict=True))
    assert row["sentence_logit"] == 2.0 and row["best_other_logit"] == -1.5
    assert row["comment_logit"] == 0.5 and row["cosine"] == 0.2
    assert row["sentence_cosine"] == 0.05 and row["log_stems"] == 2.0
    assert {s for s in PLUG_SIGNALS if row[s]} == {"s:novel_name", "s:contact"}
    assert {s for s in PLUG_SIGNALS if dict(zip(PLUG_FEATURES, rows[0], strict=True))[s]} == {"s:price"}


def test_under_an_article_the_stacker_scores_every_judged_sentence(engine):
    raw = engine.raw_scores(COMMENT, ARTICLE)
    assert engine._plug_trees is not None
    assert raw.spam_calibration == "spam_in_context"
    expected = engine._plug_trees.decision_function(raw.plug_inputs).tolist()
    assert [raw.sentence_logits[i] for i in raw.plug_sentences] == expected
    assert raw.logits["spam"] == max(expected)
    alone = engine.raw_scores(COMMENT)
    assert alone.spam_calibration == "spam" and alone.plug_inputs is None


def test_stacker_labels_mark_the_plug_sentence(engine):
    raw = engine.raw_scores(COMMENT, ARTICLE)
    start = COMMENT.index(PLUG)
    spam = {"spam": 1.0}
    marked = Example(COMMENT, "moderato", "train", spam, article=ARTICLE, spam_spans=((start, start + len(PLUG)),))
    _, labels = stacker_rows(marked, raw)
    plug_rows_ = [i for i, label in zip(raw.plug_sentences, labels, strict=True) if label]
    assert [raw.analysis.sentences[i].start for i in plug_rows_] == [COMMENT.index("My car")]
    everything = Example(COMMENT, "feedback", "train", spam, article=ARTICLE, spam_spans=((0, len(COMMENT)),))
    assert stacker_rows(everything, raw)[1].tolist() == [1] * len(raw.plug_sentences)  # a moderator's span
    whole = Example(COMMENT, "moderato", "train", spam, article=ARTICLE)
    inputs, labels = stacker_rows(whole, raw)
    assert labels.tolist() == [1] and inputs[0, 0] == raw.plug_inputs[:, 0].max()
    ham = Example(COMMENT, "moderato", "train", {"spam": 0.0}, article=ARTICLE)
    assert stacker_rows(ham, raw)[1].tolist() == [0] * len(raw.plug_sentences)
