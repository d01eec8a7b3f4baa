"""The text features shared by every task: one analysis of a comment feeds spam, toxicity,
its attributes, off-topic and the evidence spans.

A comment is analysed sentence by sentence and word by word, so the same feature lists serve
three purposes without being computed twice:
- the whole comment's bag of features (the concatenation of its sentences' features plus a few
  comment-level ones) for document scores;
- each sentence's own features, to find the sentence that is a spam plug;
- each word's own features (the word and its character n-grams), to find toxic words.

Feature strings carry a prefix naming their kind (`w:` word, `b:` word pair, `c:` character
n-gram, `s:` sentence signal, `d:` document shape) so a trained vocabulary stays readable.
"""

from __future__ import annotations

import re
import string
from bisect import bisect_right
from functools import lru_cache
from typing import NamedTuple

from classifier.text import (
    ATTRIBUTION,
    BENEFIT,
    BRAND,
    CONTACT,
    FIRST_PERSON,
    IS_LINK,
    NAME,
    PRICE,
    PRICE_BOAST,
    PRICE_RISE,
    RATE,
    SHORT_LINK,
    URL,
    Normalized,
    income_claim,
    might_hold_link,
    normalize,
    plug_breaks,
    price_moves,
    sentence_spans,
    visible_length,
    word_spans,
)

CHAR_NGRAMS = (3, 5)  # inclusive range of character n-gram lengths within a word
_MAX_WORD = 24  # longer "words" (URLs, hashes, keyboard mashing) get no character n-grams


class WordFeatures(NamedTuple):
    """One word: where it is in the normalized text, the token, and its own features."""

    start: int
    end: int
    token: str
    features: tuple[str, ...]


class SentenceFeatures(NamedTuple):
    """One sentence: its span in the normalized text, its words, and its other features."""

    start: int
    end: int
    words: list[WordFeatures]
    extra: list[str]  # word pairs and sentence signals

    def all_features(self) -> list[str]:
        out: list[str] = []
        for word in self.words:
            out.extend(word.features)
        out.extend(self.extra)
        return out


class Analysis(NamedTuple):
    """A whole comment, analysed. (Named tuples, not dataclasses: this runs per request.)"""

    normalized: Normalized
    sentences: list[SentenceFeatures]
    extra: list[str]  # document-level shape features

    def all_features(self) -> list[str]:
        out: list[str] = []
        for sentence in self.sentences:
            out.extend(sentence.all_features())
        out.extend(self.extra)
        return out


@lru_cache(maxsize=200_000)
def word_features(word: str) -> tuple[str, ...]:
    """The word itself plus its character n-grams (with word-boundary padding, like char_wb)."""
    if "." in word and IS_LINK.fullmatch(word):
        domain = word.split("//", 1)[-1].split("/", 1)[0].removeprefix("www.")
        tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
        # The words a domain is made of ("kidsboost-vitamins.com": kidsboost, vitamins) say what
        # it sells even when the domain itself was never seen in training.
        parts = [f"w:{part}" for part in re.split(r"[-.]", domain.rsplit(".", 1)[0]) if len(part) >= 3]
        hyphen = ["s:hyphen_domain"] if "-" in domain else []
        return ("s:url", f"w:{domain}", f"s:tld_{tld}", *parts, *hyphen)
    if word[0] in "$€£¥":
        return ("w:__price__", f"w:{word[0]}")
    if word.isdigit():
        return (f"w:__num{min(len(word), 6)}__",)
    feats = [f"w:{word}"]
    if 1 < len(word) <= _MAX_WORD and word.isalnum():
        padded = f" {word} "
        lo, hi = CHAR_NGRAMS
        for n in range(lo, hi + 1):
            feats.extend(f"c:{padded[i : i + n]}" for i in range(len(padded) - n + 1))
    return tuple(feats)


#: Sentence signals, each with what every match of it needs (see `_prerequisites`): most comments
#: have no digit and no link, and ruling a pattern out with `in` or a two-character search costs
#: far less than running it.
_SIGNAL_FEATURES = (
    ("s:short_link", SHORT_LINK, "link"),
    ("s:contact", CONTACT, ""),
    ("s:price", PRICE, "digit"),
    ("s:link", URL, "link"),
    ("s:price_boast", PRICE_BOAST, "digit"),
    ("s:price_rise", PRICE_RISE, "digit"),
    ("s:attribution", ATTRIBUTION, "aside"),
)
_DIGIT = re.compile(r"\d")
_UPPER = re.compile(r"[A-Z]")
_ARTICLE_WORD = re.compile(r"[a-z0-9]+")
_LETTER = re.compile(r"[^\W\d_]")
_ASCII_LETTERS = string.ascii_letters.encode()
_ASCII_UPPER = string.ascii_uppercase.encode()
_new_word = tuple.__new__  # WordFeatures(...) runs a Python-level __new__; this is the C one


def _prerequisites(text: str) -> dict[str, bool]:
    """Which kinds of signal pattern can match `text` at all (the keys of `_SIGNAL_FEATURES`)."""
    return {
        "": True,
        "link": might_hold_link(text),
        "digit": _DIGIT.search(text) is not None,  # PRICE, PRICE_BOAST and PRICE_RISE all need a \d
        "aside": "(" in text or "thanks to" in text,  # ATTRIBUTION's two alternatives
    }


def _letters_and_capitals(original: str) -> tuple[int, int]:
    """How many letters (`_LETTER`) and capitals A-Z the text has. For ASCII text (most comments)
    the letters are exactly A-Z and a-z, counted by deleting bytes instead of listing regex matches."""
    if original.isascii():
        raw = original.encode("ascii")
        return len(raw) - len(raw.translate(None, _ASCII_LETTERS)), len(raw) - len(raw.translate(None, _ASCII_UPPER))
    return len(_LETTER.findall(original)), len(_UPPER.findall(original))


def _bucket(value: float, edges: tuple[float, ...]) -> int:
    for i, edge in enumerate(edges):
        if value < edge:
            return i
    return len(edges)


def article_words(title: str, body: str) -> frozenset[str]:
    """The article's words, lower-cased: a brand the comment names is "unmentioned" if not among them."""
    return frozenset(m.group(0) for m in _ARTICLE_WORD.finditer(normalize(f"{title} {body}").text))


def _name_pairs(words: list[WordFeatures], named: set[int]) -> list[str]:
    """Word pairs with an unmentioned name replaced by `_name_`: "b:to _name_", "b:_name_ sorted".

    A plug names its own firm, and each firm is new ("Tinsmith Cowork", "Keyfast Locks"): the
    name's own word and pairs never recur, so a model that learnt them located plugs in training
    and missed them on new text. The words around the name do recur ("switched to _", "_ sorted
    us out", "ask for Dana at _"). A name of several words ("Keyfast Locks") is one `_name_`.
    """
    out = []
    k = 0
    while k < len(words):
        if words[k].start not in named:
            k += 1
            continue
        end = k + 1
        while end < len(words) and words[end].start in named:
            end += 1
        if k > 0:
            out.append(f"b:{words[k - 1].token} _name_")
        if end < len(words):
            out.append(f"b:_name_ {words[end].token}")
        k = end
    return out


def analyze_normalized(normalized: Normalized, article: frozenset[str] | None = None) -> Analysis:
    """Analyse text that has already been normalized (the engine's fast path).

    With the article's words (`article_words`), a brand the comment names that the article never
    mentions adds `s:novel_brand` to its sentence: genuine comments talk about the story's own
    companies and people, a plug brings in its own.
    """
    text = normalized.text
    original = normalized.original
    spans = sentence_spans(text, plug_breaks(normalized))
    sentences = []
    for start, end in spans:
        matches = list(word_spans(text, start, end))
        tokens = [match.group() for match in matches]
        words = [
            _new_word(WordFeatures, (match.start(), match.end(), token, word_features(token)))
            for match, token in zip(matches, tokens, strict=True)
        ]
        pairs = [f"b:{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
        sentences.append(SentenceFeatures(start, end, words, pairs))
    n_letters, n_capitals = _letters_and_capitals(original)
    if sentences:
        # File each signal match under the sentence it starts in.
        starts = [s for s, _ in spans]
        possible = _prerequisites(text)
        found = [
            (m.start(), name)
            for name, pattern, needs in _SIGNAL_FEATURES
            if possible[needs]
            for m in pattern.finditer(text)
        ]
        if "$" in text or "£" in text or "€" in text:
            found.extend(price_moves(text))
        for match in BRAND.finditer(original) if n_capitals else ():  # every brand has a capital A-Z
            position = normalized.to_normalized(match.end() - 1)
            found.append((position, "s:brand"))
            if article is not None and match.group(0).split()[-1].lower() not in article:
                found.append((position, "s:novel_brand"))
        named: set[int] = set()  # where each word of a name the article does not know starts
        if article is not None and n_capitals:
            # Any other name the article does not know. Pairing it with a price or "I/my" (as for
            # brands) held a reader's own bills ("I'm 61, not old enough for Medicare, and my
            # premium is $1,140 a month") as often as it caught plugs; the words around it
            # (`_name_pairs`) let the model learn which settings of a name are a plug.
            for match in NAME.finditer(original):
                if match.group(0).lower() not in article:
                    position = normalized.to_normalized(match.start())
                    found.append((position, "s:novel_name"))
                    named.add(position)
        # Where a trick was undone (look-alike letters, "p-h-a-r-m-a-c-y", "dot com"): genuine
        # comments rarely disguise words, so the sentence that does is suspect on its own.
        found.extend((normalized.to_normalized(i), "s:obfuscated") for i in normalized.tricks)
        if "%" in text:
            found.extend((m.start(), "s:rate") for m in RATE.finditer(text))
        # A name is filed once per sentence. The check is a set, not `name in extra`: extra already
        # holds the sentence's word pairs, and 10,000 "$1" in one sentence made that scan quadratic.
        filed: set[tuple[int, str]] = set()
        for position, name in found:
            index = max(bisect_right(starts, position) - 1, 0)
            if (index, name) not in filed:
                filed.add((index, name))
                sentences[index].extra.append(name)
        for sentence in sentences:
            extra = sentence.extra
            if named:
                extra.extend(_name_pairs(sentence.words, named))
            if "s:brand" in extra and ("s:price" in extra or "s:rate" in extra):
                extra.append("s:brand_price")
            if possible["digit"] and (level := income_claim(text[sentence.start : sentence.end])):
                extra.append("s:income")
                if level == 2:
                    extra.append("s:income_anywhere")
            if "s:novel_brand" in extra:
                said = text[sentence.start : sentence.end]
                if FIRST_PERSON.search(said):
                    extra.append("s:brand_testimonial")
                if BENEFIT.search(said):
                    extra.append("s:brand_benefit")
    caps = n_capitals / (n_letters or 1)
    extra = [
        # As long as a reader sees it: zero-width characters stuffed in must not make it "long".
        f"d:len{_bucket(visible_length(original), (20, 60, 150, 400, 1000))}",
        f"d:sent{_bucket(len(sentences), (2, 3, 5, 9))}",
        f"d:caps{_bucket(caps, (0.05, 0.2, 0.5, 0.8))}",
    ]
    if normalized.obfuscated:
        extra.append("d:obfuscated")
    if original.count("!") >= 3:
        extra.append("d:bangs")
    return Analysis(normalized, sentences, extra)


def analyze(text: str, article: frozenset[str] | None = None) -> Analysis:
    """Normalize and analyse a raw comment (`article`: its article's words, see `article_words`)."""
    return analyze_normalized(normalize(text), article)


def feature_list(text: str) -> list[str]:
    """The flat feature list of a raw text: the analyzer given to scikit-learn's TfidfVectorizer.

    A module-level function (not a lambda) so that a fitted vectorizer pickles.
    """
    return analyze(text).all_features()


def identity_analyzer(features: list[str]) -> list[str]:
    """For vectorizing pre-computed feature lists (training computes them once for all heads)."""
    return features
