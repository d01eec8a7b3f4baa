"""The engine's fast scoring path must equal the scikit-learn objects it was read from, and
behave on hostile or odd input."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from classifier import Article, Engine, InputError
from classifier.engine import off_topic_features
from classifier.features import analyze, feature_list

TEXTS = [
    "Great article, thanks! Visit my blog at cheap-pills dot com for discounts",
    "You are an absolute idiot and everyone here knows it.",
    "The council should publish the flood report. Residents deserve answers.",
    "",
    "   ",
    "ok",
]


@pytest.fixture(scope="module")
def engine(tiny_bundle):
    return Engine.load(tiny_bundle)


def test_fast_path_equals_sklearn(engine):
    artifact = engine.bundle.artifact
    X = artifact["vectorizer"].transform([feature_list(t) for t in TEXTS])
    for name in ("spam", "toxicity", "insult"):
        expected = artifact["heads"][name].decision_function(X)
        column = engine._column[name]
        for text, z in zip(TEXTS, expected, strict=True):
            ids = engine.space.analysis_ids(analyze(text))
            unique, values = engine.space.vectorize(ids.doc)
            got = values @ engine._weights[unique, column] + engine._bias[column]
            assert got == pytest.approx(z, abs=1e-9)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " \n\t ",
        "a" * 20_000,
        "🙂" * 5000,
        "http://x.y/" * 50,
        "名前は長いです。" * 30,
        "\u200b\u200b",
        "<script>x</script>",
    ],
)
def test_odd_input_scores_in_range_without_crashing(engine, text):
    article = Article("Flood hits town", "The river burst its banks on Monday and the council opened shelters.")
    for a in (engine.assess(text), engine.assess(text, article)):  # with an article, the plug stacker too
        for value in (*[v for v in a.scores.values() if v is not None], *a.attributes.values()):
            assert 0.0 <= value <= 1.0
        for reason in a.reasons:
            for span in reason.spans:
                assert text[span.start : span.end] == span.text


def test_off_topic_is_null_without_article_and_scored_with_one(engine):
    assert engine.assess("nice").scores["off_topic"] is None
    article = Article("Flood hits town", "The river burst its banks and 40 homes were evacuated.")
    assert 0.0 <= engine.assess("The river flooded our street", article).scores["off_topic"] <= 1.0


def test_non_string_input_is_an_input_error(engine):
    with pytest.raises(InputError):
        engine.assess(None)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        engine.assess("x" * 200_000)


def test_policy_override_changes_the_decision_not_the_scores(engine):
    text = "Earn $500 a day from home, message me on telegram @cashking"
    base = engine.assess(text)
    strict = engine.assess(text, policy=engine.policy.with_overrides({"spam": {"hold": 0.0, "reject": 0.0}}))
    lenient = engine.assess(text, policy=engine.policy.with_overrides({"spam": {"hold": 1.0, "reject": 1.0}}))
    assert strict.scores == base.scores == lenient.scores
    assert strict.decision == "reject"
    assert "spam" not in [r.label for r in lenient.reasons]


def test_spam_direction_on_the_tiny_bundle(engine):
    spam = engine.assess("Make $5000 a week from home!!! Message me on WhatsApp +1 555 010 2222 now")
    ham = engine.assess("The council should publish the flood report so residents know what happened.")
    assert spam.scores["spam"] > ham.scores["spam"]


def test_spam_evidence_names_a_name_the_article_never_mentions(engine):
    article = Article("Mayor opens the new bridge", "Mayor Ruth Alder cut the ribbon on the Elm Road bridge.")
    everything = engine.policy.with_overrides({"spam": {"hold": 0.0}})
    plug = engine.assess("Nice bridge. Keyfast Locks did our door for £240.", article, policy=everything)
    assert "unmentioned_name" in plug.evidence["spam"].signals
    story = engine.assess("Nice bridge. Well done to Mayor Alder for getting it built.", article, policy=everything)
    assert "unmentioned_name" not in story.evidence["spam"].signals


def test_toxicity_spans_point_at_the_insult(engine):
    text = "The councillor who approved this is a stupid moron and an idiot."
    a = engine.assess(text, policy=engine.policy.with_overrides({"toxicity": {"hold": 0.0}}))
    spans = a.evidence["toxicity"].spans
    marked = " ".join(s.text for s in spans).lower()
    if spans:  # the tiny bundle's gate may stay shut; when it opens, it must mark insults
        assert any(w in marked for w in ("stupid", "moron", "idiot"))
    assert np.isfinite(a.scores["toxicity"])


def test_batch_over_processes_equals_one_by_one(engine):
    items = [
        (f"Comment number {i}: earn ${i}00 a week from home, DM me" if i % 3 else "Fair point.", None)
        for i in range(450)
    ]
    parallel = engine.assess_batch(items, processes=2)
    sequential = engine.assess_batch(items)
    assert [a.to_dict() for a in parallel] == [a.to_dict() for a in sequential]


def test_a_longer_comment_needs_more_evidence_per_toxic_word(engine):
    short = "You stupid moron."
    long = short + " " + "The council met on Tuesday to discuss the budget and the new bus lanes. " * 12
    for text in (short, long):
        raw = engine.raw_scores(text)
        cut_free = engine.toxic_word_spans(raw, gate=0.0, word=0.01, length=0.0)
        assert cut_free, "with a near-zero cut every word with any toxic evidence is marked"
        strict = engine.toxic_word_spans(raw, gate=0.0, word=0.01, length=3.0)
        if text is short:
            # below the 200-character reference a positive slope lowers the cut: no fewer spans
            assert sum(e - s for s, e in strict) >= sum(e - s for s, e in cut_free)
        else:
            assert sum(e - s for s, e in strict) < sum(e - s for s, e in cut_free)


def test_attribute_calibration_adds_the_log_of_the_toxicity_probability(engine):
    a, b, c = engine._calibration["insult"]
    z, z_tox = 0.7, -1.3
    expected = 1 / (1 + np.exp(-(a * z + b + c * np.log(1 / (1 + np.exp(-z_tox))))))
    assert engine._calibrated("insult", z, z_tox) == pytest.approx(expected)


FLOOD = Article(
    "River Lune bursts its banks in Lowmere", "Flood water reached the square on Sunday. 40 homes were evacuated."
)
PHONE = Article(
    "Phone maker raises flagship price to $1,199", "The new Aurora 9 phone will cost $1,199, up $100 from last year."
)
VARIED = [
    ("Hope everyone in the square got out safely. That water rose so fast.", FLOOD),
    ("Great article, thanks! Visit my blog at cheap-pills dot com for discounts", FLOOD),
    ("You are an absolute idiot and everyone here knows it.", None),
    ("", None),
    ("   ", FLOOD),
    ("ok", PHONE),
    ("!!!", None),
    (
        "Honestly the council had years to fix this. My insurance is up to $450/month from just $200/month. "
        "I switched to Fernvest, only $25/month (from Insurance Panda) — bit.ly/cheap-cover. Check it out!",
        FLOOD,
    ),
    ("Earn $500 a day from home, message me on telegram @cashking or WhatsApp +1 555 010 2222", PHONE),
    ("The councillor who approved this is a stupid moron and an idiot.\nShut up, you fool.", FLOOD),
    ("Buy v i a g r a at ph4rm4cy.biz\u200b now; best prices; free shipping", None),
    ("Ünïcödé façade — naïve café. Аpple іs a brand?", PHONE),
    ("The phone is too expensive. Battery life is fine though. I'll wait for the sale.", PHONE),
    ("The phone is too expensive. Battery life is fine though. I'll wait for the sale.", FLOOD),
    ("www.example.com", None),
    ("The council met on Tuesday to discuss the budget and the new bus lanes. " * 12, FLOOD),
    ("<br>Nice &amp; clear report.<br/>Thanks", Article("", "")),
]


def test_batch_equals_one_by_one_exactly(engine):
    """assess_batch scores comments together (one vectorisation and product per chunk) but must
    say exactly what assess says for each: rows are computed independently, so no tolerance."""
    items = VARIED + VARIED[::-1] + VARIED[::3]  # more than one chunk, each comment in varied company
    policy = engine.policy.with_overrides({"toxicity": {"hold": 0.0}, "spam": {"hold": 0.3}})
    for used in (None, policy):
        batch = engine.assess_batch(items, policy=used)
        assert batch == [engine.assess(text, article, policy=used) for text, article in items]
    assert batch[0] == batch[len(VARIED) * 2 - 1], "the same comment and article in another batch position"


def test_a_batch_pauses_the_collector_and_leaves_no_cyclic_garbage(engine):
    """`assess_batch` turns the cyclic collector off while it runs (a speed-up, see
    `_collector_paused`): that is only safe while scoring creates no reference cycles, since
    memory held in cycles would wait for the next collection. The collector's state is restored,
    also when the batch fails."""
    items = VARIED * 3
    gc.collect()
    try:
        gc.disable()
        engine.assess_batch(items)
        assert gc.collect() == 0, "scoring a batch created reference cycles"
        assert not gc.isenabled(), "a caller's disabled collector must stay disabled"
    finally:
        gc.enable()
    with pytest.raises(InputError):
        engine.assess_batch([*items, (b"not text", None)])
    assert gc.isenabled()


def test_raw_scores_in_a_batch_equal_raw_scores_alone(engine):
    raws = engine._score([engine._prepare(text, article) for text, article in VARIED])
    for (text, article), raw in zip(VARIED, raws, strict=True):
        alone = engine.raw_scores(text, article)
        assert raw.logits == alone.logits
        assert raw.sentence_logits == alone.sentence_logits
        if alone.off_topic_features is None:
            assert raw.off_topic_features is None
        else:
            assert raw.off_topic_features.tolist() == alone.off_topic_features.tolist()


def test_training_builds_the_off_topic_inputs_the_engine_serves(engine):
    """Training computes the stacker's inputs with out-of-fold logits through `off_topic_features`;
    with the engine's own logits they must be exactly what `raw_scores` feeds the stacker."""
    for text, article in VARIED:
        raw = engine.raw_scores(text, article)
        if raw.off_topic_features is None:
            continue
        text_logit, spam_logit = raw.off_topic_features[-2:]
        rebuilt = off_topic_features(
            engine.space, raw.analysis, raw.ids, text_logit, spam_logit, engine.article_vector(article)
        )
        assert rebuilt.tolist() == raw.off_topic_features.tolist()


def test_vectorizing_rows_together_equals_each_row_alone(engine):
    space = engine.space
    docs = [space.analysis_ids(analyze(text)).doc for text, _ in VARIED]
    ids = np.array([i for doc in docs for i in doc], dtype=np.int64)
    rows = np.repeat(np.arange(len(docs)), [len(doc) for doc in docs])
    together = space.vectorize_rows(ids, rows, len(docs))
    for r, doc in enumerate(docs):
        unique, values = space.vectorize(doc)
        start, end = together.indptr[r], together.indptr[r + 1]
        assert together.indices[start:end].tolist() == unique.tolist()
        assert together.values[start:end].tolist() == values.tolist()
