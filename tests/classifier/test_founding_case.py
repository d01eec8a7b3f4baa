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


def test_embedded_plug_is_spam_and_the_span_is_the_plug(engine):
    a = engine.assess(RANT, ARTICLE)
    assert a.decision in ("hold", "reject")
    spam = next(r for r in a.reasons if r.label == "spam")
    assert spam.score >= engine.policy.thresholds["spam"].hold
    start = RANT.index(PLUG)
    plug = set(range(start, start + len(PLUG)))
    marked = {c for s in spam.spans for c in range(s.start, s.end)}
    assert len(marked & plug) * 2 >= len(plug), "the span covers at least half of the plug"
    assert len(marked & plug) * 2 >= len(marked), "at least half of the span is plug"
    for s in spam.spans:
        assert RANT[s.start : s.end] == s.text


def test_a_reader_complaining_about_insurance_prices_is_ham(engine):
    a = engine.assess("My health insurance is up to $450/month from just $200/month.", ARTICLE)
    assert a.scores["spam"] < engine.policy.thresholds["spam"].hold
    assert "spam" not in [r.label for r in a.reasons]


def test_a_short_reply_on_the_story_is_approved(engine):
    a = engine.assess("It looks like both of their computers are down.", ARTICLE)
    assert a.decision == "approve"
