"""One analysis per comment: the features that words, sentences and the whole comment carry."""

from __future__ import annotations

import re

import pytest

from classifier.features import _SIGNAL_FEATURES, _letters_and_capitals, analyze, article_words, word_features
from classifier.text import BRAND, RATE, normalize, signals


def _signals(text: str) -> list[list[str]]:
    return [[f for f in s.extra if f.startswith("s:")] for s in analyze(text).sentences]


def test_a_domain_brings_the_words_it_is_made_of():
    features = word_features("kidsboost-vitamins.com")
    assert {"s:url", "w:kidsboost-vitamins.com", "s:tld_com", "w:kidsboost", "w:vitamins", "s:hyphen_domain"} <= set(
        features
    )
    assert "s:hyphen_domain" not in word_features("www.gov.uk")


def test_a_brand_next_to_a_price_or_rate_is_a_testimonial_signal():
    first, second = _signals("We got 5.2% on a fix through Havenlend. The Mayor spoke at City Hall.")
    assert {"s:brand", "s:rate", "s:brand_price"} <= set(first)
    assert "s:brand" in second and "s:brand_price" not in second


def test_money_earned_online_in_a_period_is_an_income_claim_and_a_wage_is_not():
    claim, wage, bill = _signals(
        "Great story. My aunt makes $83 an hour on the internet. "
        "I make $24 an hour as a nurse aide. My health insurance is up to $450/month."
    )[1:]
    assert {"s:income", "s:income_anywhere"} <= set(claim)
    assert "s:income" in wage and "s:income_anywhere" not in wage
    assert "s:income_anywhere" not in bill
    assert {"s:income", "s:income_anywhere"} <= set(_signals("paid me 763 pounds last week from my phone")[0])
    assert "income_claim" in signals(normalize("she earns 5k a month working from home").text)
    assert "income_claim" not in signals(normalize("I earn 5k a month. I work from home on Fridays.").text)
    assert "income_claim" in signals(normalize("she makes $83.50 an hour online, no joke").text)


def test_obfuscation_is_filed_under_the_sentence_that_used_it():
    clean, tricked = _signals("Sad news for the town. I used Swіftlоаn 247, paid out same day.")
    assert "s:obfuscated" not in clean
    assert "s:obfuscated" in tricked


def test_every_feature_has_a_kind_prefix():
    analysis = analyze("Visit ex4mple dot com!! Only $9/month with PayPocket, 5% off. You idiot.")
    assert all(f[:2] in {"w:", "c:", "b:", "s:", "d:"} for f in analysis.all_features())


def test_a_brand_the_article_never_mentions_is_novel():
    words = article_words("Halden Bank holds rates", "The Halden Bank kept its rate at 5% on Thursday.")
    (plug,) = [
        [f for f in s.extra if f.startswith("s:")] for s in analyze("We got 5.2% through Havenlend.", words).sentences
    ]
    (story,) = [
        [f for f in s.extra if f.startswith("s:")] for s in analyze("Rates with Halden are 5%.", words).sentences
    ]
    assert "s:novel_brand" in plug
    assert "s:brand" in story and "s:novel_brand" not in story
    # without an article nothing can be called novel
    assert "s:novel_brand" not in analyze("We got 5.2% through Havenlend.").all_features()


def test_a_first_person_benefit_with_an_unmentioned_brand_is_a_testimonial():
    words = article_words("Rates held", "The Halden Bank kept its rate at 5% on Thursday.")
    (plug,) = _signals_with("Moved my ISA to Fernvest, it returned 8.2% last year with no fees.", words)
    assert {"s:novel_brand", "s:brand_testimonial", "s:brand_benefit"} <= set(plug)
    (news,) = _signals_with("The minister went to London on Monday.", words)
    assert "s:brand" not in news  # days, months and plain "went to" are not brands


def _signals_with(text: str, words: frozenset[str]) -> list[list[str]]:
    return [[f for f in s.extra if f.startswith("s:")] for s in analyze(text, words).sentences]


def test_a_name_inside_a_sentence_that_the_article_never_mentions_is_novel():
    words = article_words("Break-in on Elm Road", "Gareth Hughes said thieves forced the door on Tuesday night.")
    (plug,) = _signals_with("The door needs replacing, Keyfast Locks did ours for £240.", words)
    assert "s:novel_name" in plug
    (story,) = _signals_with("Fair play to Gareth, we hope the door is fixed by Tuesday.", words)
    assert "s:novel_name" not in story  # named in the article; days and months are never names
    (first,) = _signals_with("Nannybee is what I use.", words)
    assert "s:novel_name" not in first  # a sentence's first word is capitalised anyway
    assert "s:novel_name" not in analyze("I pay Erasa every month.").all_features()  # no article, nothing novel


def test_the_words_around_an_unmentioned_name_pair_with_a_placeholder():
    words = article_words("Break-in on Elm Road", "Gareth Hughes said thieves forced the door on Tuesday night.")
    (plug,) = analyze("The door needs replacing, so we rang Keyfast Locks and they did ours.", words).sentences
    assert {"b:rang _name_", "b:_name_ and"} <= set(plug.extra)  # a name of two words is one _name_
    assert not any("_name_ locks" in f or "keyfast _name_" in f for f in plug.extra)
    (story,) = analyze("Fair play to Gareth, we hope the door is fixed by Tuesday.", words).sentences
    assert not any("_name_" in f for f in story.extra)  # named in the article
    assert not any("_name_" in f for f in analyze("So we rang Keyfast Locks.").all_features())  # no article


@pytest.mark.parametrize(
    "text",
    [
        "see http://x now",
        "www.-deals today",
        "Visit bit.ly/abc or example.com",
        "Only $3 a month, up to $450 from £200",
        "price ٣٠ usd",  # a non-ASCII decimal digit is a digit to PRICE
        "We earned 8.2% (from Eagle) thanks to loanbridge",
        "no links, digits or asides here. just words",
        "Ünïcödé YieldNest через Havenlend",
        "",
    ],
)
def test_skipping_patterns_that_cannot_match_changes_no_signal(text):
    """The analysis only runs a signal pattern when the text has what every match needs (a digit,
    a dot before a letter, a capital...): the signals must be those of running them all."""
    normalized = normalize(text).text
    expected = {name for name, pattern, _ in _SIGNAL_FEATURES if pattern.search(normalized)}
    expected |= {"s:rate"} if RATE.search(normalized) else set()
    expected |= {"s:brand"} if BRAND.search(text) else set()
    checked = {name for name, _, _ in _SIGNAL_FEATURES} | {"s:rate", "s:brand"}
    assert {f for sentence in _signals(text) for f in sentence if f in checked} == expected


@pytest.mark.parametrize("text", ["Hello World", "ÀÉ ñ Ünï Capital", "Ⅻ ² ½ x_y", "", "ABC def 123"])
def test_letters_and_capitals_count_like_the_regexes(text):
    assert _letters_and_capitals(text) == (len(re.findall(r"[^\W\d_]", text)), len(re.findall(r"[A-Z]", text)))


def test_zero_width_stuffing_does_not_make_a_comment_long():
    """The document's length bucket is the length a reader sees: a zero-width space after every
    letter of a 50-character comment would otherwise file it with 150-400-character comments."""
    text = "Nice one, the council finally fixed the bus lane."
    stuffed = "\u200b".join(text)
    shape = [f for f in analyze(text).extra if f.startswith("d:len")]
    assert shape and [f for f in analyze(stuffed).extra if f.startswith("d:len")] == shape
