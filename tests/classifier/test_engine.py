"""The engine's fast scoring path must equal the scikit-learn objects it was read from, and
behave on hostile or odd input."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from classifier import DECISIONS, LABELS, Article, Assessment, Engine, InputError
from classifier.engine import TOXIC_WORD_FLOOR, off_topic_features
from classifier.features import analyze, feature_list
from classifier.text import is_blank

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
    assert engine._calibrated("insult", {"insult": z, "toxicity": z_tox}) == pytest.approx(expected)


def test_toxicity_calibration_adds_the_most_toxic_words_logit(engine):
    """Toxicity's second calibration input is the span head's logit of the comment's most toxic
    word, floored; a bundle calibrated without it (c = 0) scores from the document head alone."""
    text = "The council meeting ran long and the mayor, frankly an idiot, said nothing about the flood."
    raw = engine.raw_scores(text)
    words = [w for s in raw.analysis.sentences for w in s.words]
    assert raw.logits["toxic_word"] == pytest.approx(max(engine._word_span_logit(w) for w in words))
    a, b, c = engine._calibration["toxicity"]
    assert c != 0  # fitted on the tiny bundle's validation slice
    z, w = raw.logits["toxicity"], raw.logits["toxic_word"]
    assert engine.assess(text).scores["toxicity"] == pytest.approx(1 / (1 + np.exp(-(a * z + b + c * w))))
    assert engine.raw_scores("").logits["toxic_word"] == TOXIC_WORD_FLOOR  # no words at all
    assert min(engine.raw_scores(t).logits["toxic_word"] for t in TEXTS) >= TOXIC_WORD_FLOOR
    saved = engine._calibration["toxicity"]
    try:
        engine._span_logits["zzqxv"] = -50.0  # what a word with no known feature gets
        assert engine.raw_scores("zzqxv").logits["toxic_word"] == TOXIC_WORD_FLOOR
        engine._calibration["toxicity"] = (a, b, 0.0)
        assert engine.assess(text).scores["toxicity"] == pytest.approx(1 / (1 + np.exp(-(a * z + b))))
    finally:
        engine._span_logits.pop("zzqxv", None)
        engine._calibration["toxicity"] = saved


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


# --- properties on arbitrary and adversarial text (the shipped default bundle) ----------------------

#: Pieces that have broken or could break offset bookkeeping: combining marks, characters that
#: NFKC/NFKD expands into several ("ﬁ", "Ⅻ", "㎏", "¼", "ﷺ"), fullwidth letters, emoji with ZWJ and
#: skin tones, astral letters, bidi overrides, CR/CRLF and other line ends, control and format
#: characters, look-alike letters, and the words and tricks the heads react to.
ADVERSARIAL = (
    "\u0301", "\u0308\u0323", "ﬁ", "ﬃ", "Ⅻ", "㎏", "¼", "½", "ﷺ", "㏂", "⑴", "…", "Ｆｒｅｅ", "ｉｄｉｏｔ",
    "👩🏽‍👩🏽‍👧🏽", "👍🏿", "🏳️‍🌈", "\U0001d400\U0001d41b", "\U00020000", "\u202e", "\u202d", "\u200f", "\u2066",
    "\r\n", "\r", "\n", "\u2028", "\u2029", "\x85", "\x01", "\x1b", "\x7f", "\t", "\u200b", "\u200d",
    "\ufeff", "\u00ad", "İ", "ß", "ǅ", "ΐ", "Ω", "K", "שלום", "مرحبا", "名前は", "Привет", "саsinо",
    "idiot", "stupid", "moron", "fuck", "Idiot!", "viagra", "casino", "free", "cash", "bit.ly/x",
    "www.x.com", "ex4mple dot com", "v i a g r a", "c-a-s-i-n-o", "fr33", "$25/month", "+1 555 010 2222",
    "(from Eagle)", "Insurance Panda", "I", "my", "the", "council", "flood", ".", "!", "?", " - ", ";",
    "&amp;", "<br>", " ", "  ",
)  # fmt: skip
_piece = st.one_of(
    st.sampled_from(ADVERSARIAL),
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),  # any code point, astral too
)
_pieces = st.lists(_piece, min_size=1, max_size=30).map("".join)
_no_letters = st.text(st.sampled_from("0123456789 .,!?-_*/()[]$%@#\n\r\t😀🙂👍🏽\u200b"), min_size=1, max_size=60)
_long_word = st.builds(lambda c, n: c * n, st.sampled_from(["a", "x", "é", "я", "ﬁ", "1.", "ab-", "😀"]),
                       st.integers(30, 400))  # fmt: skip
_spread = _pieces.map(lambda t: "\u200b".join(t))  # a zero-width character between every character
ANY_TEXT = st.one_of(_pieces, _pieces, _no_letters, _long_word, _spread).filter(lambda t: not is_blank(t))
ANY_ARTICLE = st.one_of(
    st.none(),
    st.just(Article("Flood hits town", "The river burst its banks on Monday and the council opened shelters.")),
    st.just(Article("", "")),
    st.builds(Article, st.text(max_size=40), _pieces),
)
PROPERTY = settings(max_examples=60, deadline=None)


@pytest.fixture(scope="module")
def default_engine():
    return Engine.load()


def _everything(engine: Engine):
    """Every label held from 0: every evidence path (spam sentences, toxic words) runs."""
    return engine.policy.with_overrides({"spam": {"hold": 0.0}, "toxicity": {"hold": 0.0}, "off_topic": {"hold": 0.0}})


def _check_assessment(a: Assessment, text: str, article: Article | None) -> None:
    assert a.decision in DECISIONS
    assert set(a.scores) == {"spam", "toxicity", "off_topic"}
    with_article = article is not None and not article.is_empty
    assert (a.scores["off_topic"] is None) == (not with_article)
    for value in (*(v for v in a.scores.values() if v is not None), *a.attributes.values()):
        assert isinstance(value, float) and 0.0 <= value <= 1.0
    assert [r.label for r in a.reasons] == list(dict.fromkeys(r.label for r in a.reasons))
    for reason in (*a.reasons, *a.evidence.values()):
        assert reason.label in LABELS and reason.label != "ham"
        assert 0.0 <= reason.score <= 1.0
        end = 0
        for span in sorted(reason.spans, key=lambda s: s.start):
            assert 0 <= span.start < span.end <= len(text)
            assert span.text == text[span.start : span.end]
            assert span.start >= end, f"overlapping {reason.label} spans: {reason.spans}"
            end = span.end


@PROPERTY
@given(ANY_TEXT, ANY_ARTICLE)
@example("you stupid fucking idiot¼moron", None)  # "¼" -> "1⁄4": two toxic words met in one character
def test_assess_is_total_and_its_spans_point_into_the_original(default_engine, text, article):
    for policy in (None, _everything(default_engine)):
        _check_assessment(default_engine.assess(text, article, policy=policy), text, article)


def test_toxic_words_meeting_in_one_expanded_character_are_one_span(default_engine):
    text = "you stupid fucking idiot¼moron"
    (reason,) = default_engine.assess(text).reasons
    assert reason.label == "toxicity"
    assert [s.text for s in reason.spans] == ["stupid fucking idiot¼moron"]  # was "...idiot¼" and "¼moron"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(ANY_TEXT, ANY_ARTICLE), min_size=1, max_size=20))
def test_a_batch_says_exactly_what_assess_says(default_engine, items):
    policy = _everything(default_engine)
    assert default_engine.assess_batch(items) == [default_engine.assess(t, a) for t, a in items]
    assert default_engine.assess_batch(items, policy=policy) == [
        default_engine.assess(t, a, policy=policy) for t, a in items
    ]


@PROPERTY
@given(ANY_TEXT, ANY_ARTICLE)
def test_to_dict_is_json_and_round_trips(default_engine, text, article):
    for policy in (None, _everything(default_engine)):
        out = default_engine.assess(text, article, policy=policy).to_dict()
        assert json.loads(json.dumps(out, allow_nan=False, ensure_ascii=False)) == out
        assert json.loads(json.dumps(out, allow_nan=False)) == out
        assert set(out) == {"decision", "scores", "attributes", "reasons", "model_version"}
        for reason in out["reasons"]:
            for span in reason["spans"]:
                assert text[span["start"] : span["end"]] == span["text"]


# --- obfuscation is seen through -------------------------------------------------------------------

#: Look-alike letters that `normalize` folds back to the Latin letter they replace.
LOOK_ALIKES = {
    "a": "а", "b": "β", "c": "с", "d": "ԁ", "e": "е", "g": "ɡ", "h": "һ", "i": "і", "j": "ј", "k": "κ",
    "l": "ℓ", "m": "м", "n": "ո", "o": "о", "p": "р", "q": "ԛ", "s": "ѕ", "t": "τ", "u": "υ", "v": "ν",
    "w": "ԝ", "x": "х", "y": "у",
}  # fmt: skip
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
CALM = "The council met on Tuesday to discuss the budget and the new bus lanes. "
#: (before, phrase, after, label): a phrase the default bundle flags for `label`, in short and in
#: long (over 200 characters: the toxic-word cut grows with length) company.
OBFUSCATED_CASES = [
    ("Hope everyone got out safely. ", "You are a stupid idiot and a moron", ". See you.", "toxicity"),
    ("", "Shut up you pathetic loser", "", "toxicity"),
    (CALM * 4, "what a dumb clown, honestly.", "", "toxicity"),
    (CALM * 3, "Shut up you pathetic loser.", " " + CALM, "toxicity"),
    ("Terrible news about the flood. ", "Buy cheap viagra online at our pharmacy, free shipping", "", "spam"),
    ("Sad to see. ", "Earn $500 a day from home, message me on telegram", " Stay safe all.", "spam"),
    (CALM * 3, "Earn $500 a day from home, message me on telegram.", "", "spam"),
]
FLOOD_ARTICLE = Article("Flood hits town", "The river burst its banks on Monday and the council opened shelters.")


@st.composite
def _obfuscated(draw, case):
    """(plain text, obfuscated text, where each plain character went in the obfuscated text): the
    phrase with zero-width characters inserted and letters swapped for look-alikes at drawn places,
    and the company (not the phrase) optionally stuffed with zero-width characters too."""
    before, phrase, after, _ = case
    stuff = draw(st.booleans())
    pieces: list[str] = []
    where: list[int] = []
    length = 0
    for part, in_phrase in ((before, False), (phrase, True), (after, False)):
        for ch in part:
            how = draw(st.sampled_from(["keep", "invisible", "look-alike"])) if in_phrase else "keep"
            if not in_phrase and stuff:
                how = "invisible"
            swapped = LOOK_ALIKES.get(ch.lower(), ch) if how == "look-alike" else ch
            where.append(length)
            pieces.append(swapped)
            length += 1
            if how == "invisible":
                pieces.append(draw(st.sampled_from(INVISIBLE)))
                length += 1
    return before + phrase + after, "".join(pieces), where


def _spread(plain: str) -> tuple[str, str, list[int]]:
    """`plain` with a zero-width space after every character, as `_obfuscated` draws it."""
    return plain, "".join(ch + "\u200b" for ch in plain), [2 * i for i in range(len(plain))]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(OBFUSCATED_CASES).flatmap(lambda c: st.tuples(st.just(c), _obfuscated(c))), ANY_ARTICLE)
@example(  # zero-width characters made the comment "longer": the toxic-word cut rose and "dumb" lost its span
    (OBFUSCATED_CASES[2], _spread(CALM * 4 + "what a dumb clown, honestly.")), None
)
def test_obfuscation_keeps_the_score_and_the_span(default_engine, drawn, article):
    """Zero-width characters and look-alike letters leave the normalized words as they were; what
    changes is only the obfuscation flags (a spam signal by design: the spam score may rise) and the
    length bucket, a few features among the comment's hundred or so in an l2-normalised vector, so
    toxicity moves by well under 0.05 (0.01 at most in exploration) and spam does not fall. Every
    span of the plain text, moved to where its characters went, is covered by a span of the
    obfuscated one."""
    (before, phrase, after, label), (plain, obfuscated, where) = drawn
    a, b = default_engine.assess(plain, article), default_engine.assess(obfuscated, article)
    assert label in [r.label for r in a.reasons], "the plain phrase must be flagged to begin with"
    assert label in [r.label for r in b.reasons]
    assert abs(b.scores["toxicity"] - a.scores["toxicity"]) <= 0.05
    assert b.scores["spam"] >= a.scores["spam"] - 0.01
    covered = b.evidence[label].spans
    assert a.evidence[label].spans
    for span in a.evidence[label].spans:
        start, end = where[span.start], where[span.end - 1] + 1
        assert any(s.start <= start and end <= s.end for s in covered), (span, covered)
    phrase_start, phrase_end = where[len(before)], where[len(before) + len(phrase) - 1] + 1
    assert any(s.start < phrase_end and phrase_start < s.end for s in covered), "no span on the phrase"
