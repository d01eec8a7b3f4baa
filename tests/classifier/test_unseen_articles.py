"""The shipped default bundle on comments under articles it has never seen.

Every comment in `training_data/` was written for one of its 60 articles, and its writers named the
story's people and places, so a model can learn "on topic = shares the article's words". Real
readers engage without repeating a word ("Is it on BBC or Sky?" under a match preview). These
articles and comments (tests/data/unseen_articles.jsonl) were written apart from the corpus, after
the default bundle of 2026-11-26 held 15 of the 49 short replies for off-topic and caught one of
the eight income claims; the bounds below sit between that bundle and the current one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from classifier import Article, Engine

DATA = Path(__file__).parent.parent / "data" / "unseen_articles.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def scored():
    engine = Engine.load()
    out: dict[str, list] = {}
    for row in ROWS:
        out.setdefault(row["label"], []).append(engine.assess(row["text"], Article(**row["article"])))
    return engine.policy.thresholds, out


def test_short_replies_on_the_story_are_rarely_held_as_off_topic(scored):
    thresholds, out = scored
    held = [a for a in out["on_topic"] if a.scores["off_topic"] >= thresholds["off_topic"].hold]
    assert len(out["on_topic"]) == 49
    assert len(held) <= 10


def test_off_topic_ranks_above_on_topic(scored):
    _, out = scored
    scores = [a.scores["off_topic"] for a in out["on_topic"] + out["off_topic"]]
    truth = [0] * len(out["on_topic"]) + [1] * len(out["off_topic"])
    assert roc_auc_score(truth, scores) >= 0.87


def test_income_claims_are_flagged_and_honest_pay_talk_is_not(scored):
    thresholds, out = scored
    hold = thresholds["spam"].hold
    assert sum(a.scores["spam"] >= hold for a in out["spam"]) >= 4
    assert not [a for a in out["pay_ham"] if a.scores["spam"] >= hold]
