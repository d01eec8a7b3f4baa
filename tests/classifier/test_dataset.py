"""Our corpus follows its README: schema, labels, spans that point at the text, the split rule."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from classifier.dataset import Example, load_training_data, span_residual, splice_spam, split_of, toxicspans_gold

TRAINING_DATA = Path(__file__).resolve().parents[2] / "training_data"


@pytest.fixture(scope="module")
def rows():
    with (TRAINING_DATA / "comments.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_split_rule_matches_the_shared_corpora():
    # dev when SHA-1 of lower-cased stripped text is divisible by 5
    assert split_of("  Hello  ") == split_of("hello")
    assert {split_of(str(i)) for i in range(50)} == {"train", "dev"}


def test_genuine_comments_are_not_much_shorter_than_embedded_spam(rows):
    # When they were (2.2-2.7 sentences against 3.2), the model learned "long means spam" and held
    # 12 % of long genuine comments and 43 % of long hard ham; keep the corpus from teaching that again.
    def mean_length(kinds: set[str]) -> float:
        lengths = [len(r["text"]) for r in rows if r["kind"] in kinds]
        return sum(lengths) / len(lengths)

    assert mean_length({"ham", "hard_ham"}) >= 0.75 * mean_length({"embedded_spam"})


def test_corpus_size_schema_and_split(rows):
    with (TRAINING_DATA / "articles.jsonl").open(encoding="utf-8") as handle:
        articles = [json.loads(line) for line in handle]
    assert len(articles) >= 60
    assert all(a["title"] and len(a["body"].split()) >= 80 for a in articles)
    ids = {a["id"] for a in articles}
    assert len(rows) >= 3000
    kinds = Counter(r["kind"] for r in rows)
    assert set(kinds) == {"ham", "hard_ham", "embedded_spam", "spam", "toxic", "off_topic"}
    assert len({r["text"].strip().lower() for r in rows}) == len(rows), "duplicate comments"
    for r in rows:
        assert r["article_id"] in ids
        assert r["split"] == split_of(r["text"])


def test_spans_point_into_the_text(rows):
    for r in rows:
        if r["kind"] == "embedded_spam":
            ((start, end),) = r["spans"]["spam"]
            assert 0 <= start < end <= len(r["text"])
            assert end - start < len(r["text"]), "an embedded plug is not the whole comment"
            assert r["labels"]["spam"] == 1
        if r["kind"] == "toxic":
            assert r["labels"]["toxicity"] == 1 and r["spans"]["toxicity"]


def test_loader_joins_articles(rows):
    examples = load_training_data(TRAINING_DATA)
    assert len(examples) == len(rows)
    assert all(e.article is not None for e in examples)


def test_toxicspans_gold_is_majority_of_raters():
    row = {
        "comment_text": "you stupid idiot",
        "n_annotators": 3,
        "spans": [
            {"annotation": 1, "start": 4, "end": 10},
            {"annotation": 2, "start": 4, "end": 16},
            {"annotation": 3, "start": 11, "end": 16},
        ],
    }
    # the space at 10 is marked by one rater of three only
    assert toxicspans_gold(row) == ((4, 10), (11, 16))


def test_splicing_marks_the_plug_exactly():
    hams = [Example("The report came out today. People are angry.", "civil", "train", {"toxicity": 0.0})]
    spams = [Example("WIN a free iPhone at win-now.example", "sms", "train", {"spam": 1.0})]
    for e in splice_spam(hams, spams, n=20, seed=1):
        ((start, end),) = e.spam_spans
        assert e.text[start:end] == "WIN a free iPhone at win-now.example"


def test_a_toxicspans_residual_is_the_post_without_its_agreed_spans_and_not_toxic():
    text = "Ridiculous policy, and the minister is a lying idiot who should resign today."
    start = text.index("lying idiot")
    post = Example(text, "toxicspans", "train", {"toxicity": 1.0}, toxic_spans=((start, start + 11),))
    residual = span_residual(post)
    assert residual is not None
    assert residual.text == "Ridiculous policy, and the minister is a who should resign today."
    assert residual.labels == {"toxicity": 0.0} and residual.source == "toxicspans_residual"
    assert residual.split == "train" and not residual.toxic_spans
    # raters agreed on nothing: nothing to cut; nearly all of it marked: too little left to learn from
    assert span_residual(Example(text, "toxicspans", "train", {"toxicity": 1.0}, toxic_spans=())) is None
    whole = Example("you utter idiot", "toxicspans", "train", {"toxicity": 1.0}, toxic_spans=((4, 15),))
    assert span_residual(whole) is None
