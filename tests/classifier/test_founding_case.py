"""The case Moderato was created for, on the shipped default bundle."""

from __future__ import annotations

import pytest

from classifier import Article, Engine

ARTICLE = Article(
    "North Korea's internet goes dark for hours",
    "North Korea's connection to the outside internet went down on Monday, monitoring firms said. "
    "The country has only a handful of links, routed through China. Analysts debated whether a "
    "cyber attack or an infrastructure failure was to blame; officials in Pyongyang said nothing.",
)
PLUG = "My car insurance is currently only $25/month (from Insurance Panda) and renter's only $15/month (from Eagle)."
RANT = (
    "Honestly both parties in Washington have had twenty years to deal with North Korea and they "
    "did nothing, while we pay for all of it. My health insurance is up to $450/month from just "
    "$200/month. " + PLUG + " Meanwhile these clowns in Congress argue about who gets the credit for "
    "an outage nobody understands."
)


@pytest.fixture(scope="module")
def engine():
    return Engine.load()


SHORT_RANT = (
    "Both parties have been useless on North Korea for decades and this outage proves nobody has a plan. "
    + PLUG
    + " Anyway, sanctions clearly aren't working and someone should admit it."
)
#: The story as a platform may send it: a teaser (headline and first sentence), or a headline.
TEASER = Article(ARTICLE.title, ARTICLE.body.split(". ")[0] + ".")
HEADLINE = Article("North Korea internet outage", "")
SHORT_TEASER = Article("North Korea internet outage", "North Korea lost internet access for hours on Tuesday.")
CONTEXTS = [ARTICLE, TEASER, HEADLINE, SHORT_TEASER, None]
CONTEXT_IDS = ["article", "teaser", "headline", "short-teaser", "none"]


@pytest.mark.parametrize("text", [RANT, SHORT_RANT], ids=["rant", "short-rant"])
@pytest.mark.parametrize("article", CONTEXTS, ids=CONTEXT_IDS)
def test_embedded_plug_is_spam_and_the_span_is_the_plug(engine, text, article):
    """Before the plug stacker saw short articles in training, the short rant under the short
    teaser scored 0.38 (hold 0.48): its trees had seen plugs next to whole articles only."""
    a = engine.assess(text, article)
    assert a.decision in ("hold", "reject")
    spam = next(r for r in a.reasons if r.label == "spam")
    assert spam.score >= engine.policy.thresholds["spam"].hold
    start = text.index(PLUG)
    plug = set(range(start, start + len(PLUG)))
    marked = {c for s in spam.spans for c in range(s.start, s.end)}
    assert len(marked & plug) * 2 >= len(plug), "the span covers at least half of the plug"
    assert len(marked & plug) * 2 >= len(marked), "at least half of the span is plug"
    for s in spam.spans:
        assert text[s.start : s.end] == s.text


@pytest.mark.parametrize("article", CONTEXTS, ids=CONTEXT_IDS)
def test_a_reader_complaining_about_insurance_prices_is_ham(engine, article):
    a = engine.assess("My health insurance is up to $450/month from just $200/month.", article)
    assert a.scores["spam"] < engine.policy.thresholds["spam"].hold
    assert "spam" not in [r.label for r in a.reasons]


@pytest.mark.parametrize("article", [ARTICLE, TEASER, SHORT_TEASER], ids=["article", "teaser", "short-teaser"])
def test_a_short_reply_on_the_story_is_approved(engine, article):
    a = engine.assess("It looks like both of their computers are down.", article)
    assert a.decision == "approve"
