"""The shipped default bundle on comments under articles it has never seen.

Every comment in `training_data/` was written for one of its 60 articles, and its writers named the
story's people and places, so a model can learn "on topic = shares the article's words". Real
readers engage without repeating a word ("Is it on BBC or Sky?" under a match preview), and real
spam often carries no link. These 17 articles and their comments (tests/data/unseen_articles.jsonl:
short on-topic replies, off-topic comments, income claims and other scams, each spam genre with
honest look-alikes, and genuine comments that name an identity beside a few that attack one) were
written apart from the corpus. The bundle before the eleventh writing
round held 15 of the 49 replies for off-topic (off-topic ROC AUC 0.851) and caught one of the eight
income claims; the current one holds 7 (0.904) and catches 5. The bounds sit between the two.
The plug stacker flags 9 of the 13 other scams at the shipped seed, 10 and 12 at seeds 7 and 99
(10, 9 and 12 without it): the bound is the lowest of these.
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
    out: dict[tuple[str, str], list] = {}
    for row in ROWS:
        out.setdefault((row["label"], row["genre"]), []).append(engine.assess(row["text"], Article(**row["article"])))
    return engine.policy.thresholds, out


def test_short_replies_on_the_story_are_rarely_held_as_off_topic(scored):
    thresholds, out = scored
    replies = out["on_topic", "reply"]
    held = [a for a in replies if a.scores["off_topic"] >= thresholds["off_topic"].hold]
    assert len(replies) == 49
    assert len(held) <= 10


def test_off_topic_ranks_above_on_topic(scored):
    _, out = scored
    on, off = out["on_topic", "reply"], out["off_topic", "reply"]
    scores = [a.scores["off_topic"] for a in on + off]
    assert roc_auc_score([0] * len(on) + [1] * len(off), scores) >= 0.87


def test_income_claims_and_scams_are_flagged_and_their_honest_look_alikes_are_not(scored):
    thresholds, out = scored
    hold = thresholds["spam"].hold
    assert sum(a.scores["spam"] >= hold for a in out["spam", "income"]) >= 4
    assert sum(a.scores["spam"] >= hold for a in out["spam", "scam"]) >= 9
    assert not [a for genre in ("income", "scam") for a in out["spam_lookalike", genre] if a.scores["spam"] >= hold]


def test_identity_mentions_are_held_no_more_often_than_today_and_attacks_are_held(scored):
    """A known gap, bounded so it cannot grow: the public toxicity corpora name identities mostly in
    toxic comments, and 5 of these 23 genuine comments are held for toxicity: 2 of the 18 that name
    an identity, and 3 that call a delay "ridiculous", "pathetic" or "fat chance". See README,
    "Known gaps". The count moves with the validation seed: 5 / 5 / 5 at seeds 1234 / 7 / 99
    (6 / 4 / 6 before toxicity's calibration took the most toxic word's logit, 5 / 7 / 5 before the
    toxicity head was refitted with the validation slice); the bound is the highest of these."""
    thresholds, out = scored
    hold = thresholds["toxicity"].hold
    benign, toxic = out["benign", "identity"], out["toxic", "identity"]
    assert sum(a.scores["toxicity"] >= hold for a in benign) <= 5
    assert sum(a.scores["toxicity"] >= hold for a in toxic) >= len(toxic) - 1
