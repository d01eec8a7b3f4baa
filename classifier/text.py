"""Text preparation: see through obfuscation while keeping a map back to the original text.

Spammers write "v i a g r a", "c-a-s-i-n-o", "ex4mple dot com", Cyrillic look-alikes and zero-width
characters so that filters see other words. `normalize` undoes those tricks and records, for every
character of the normalized text, the index of the original character it came from, so evidence
found in the normalized text can be reported as spans of the text the reader actually wrote.

Everything here is cheap and deterministic: it runs on every request.
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

# Characters that render as nothing (zero-width space/joiners, BOM, soft hyphen, word joiner...).
_INVISIBLE = frozenset("\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e")

# Look-alike letters from other scripts that are used to dodge word filters (a small, common subset of
# Unicode's confusables.txt: Cyrillic and Greek letters that look Latin).
_CONFUSABLES = {
    "а": "a", "в": "b", "с": "c", "е": "e", "ё": "e", "һ": "h", "і": "i", "ј": "j", "к": "k", "м": "m",
    "н": "h", "о": "o", "р": "p", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ɡ": "g", "ո": "n", "ս": "u", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ℓ": "l", "ı": "i",
}  # fmt: skip

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "$": "s", "@": "a"})

# A token mixing letters with leet digits ("fr33", "v1agra", "c@sino"); excludes ordinary
# number+unit tokens ("25th", "4k", "10pm", "mp3") by requiring a letter before the first digit
# or a digit between letters.
_LEET_TOKEN = re.compile(r"(?<![\w@$])(?=[a-z0-9@$]*[0-9@$])[a-z0-9@$]*[a-z][a-z0-9@$]*(?![\w@$])")
_LEET_CHAR = re.compile(r"[0-9@$]")  # every leet token has one: a quick way to rule most texts out
# A leet character between two letters ("b1tcoin"), or two or more trailing ones ("fr33").
_LEET_INNER = re.compile(r"[a-z][0134578$]+[a-z]|^[a-z]{2,}[0134578]{2,}$")
# Three or more single letters separated by the same spacer: "v i a g r a", "c-a-s-i-n-o", "f.r.e.e".
_SPACED = re.compile(r"\b[a-z](?:(?P<sep>[ .\-_*]{1,2})[a-z])(?:(?P=sep)[a-z])+\b")
# Spaced-out domains: "p h a r m a e a s y . b i z" (single letters, a spaced dot before the TLD).
_SPACED_DOMAIN = re.compile(r"\b[a-z](?: [a-z]){2,40} ?\. ?[a-z](?: [a-z]){1,3}\b")
# A dot spelt out: "dot", "(dot)", "[dot]", "[.]".
_SPELT_DOT = r"\(dot\)|\[dot\]|\[\.\]|\bdot\b"
# "example dot com", "example (dot) net", "example[.]org", "example . com".
_DOT_WORD = re.compile(
    r"(?<!\s)\s*(?:" + _SPELT_DOT + r"|\(\.\))\s*"
    r"(?=(?:com|net|org|io|co|xyz|info|biz|ru|me|ly|app|shop|site|online|store|link|top|us|uk|cc|tk|gg"
    r"|ca|au|nz|ie|de|eu|in|tv|live|club|market|finance)\b)"
    # a spaced dot only before endings that are no English word ("ended . Me and you" is no domain)
    r"|(?<=[a-z0-9])\s+\.\s*(?=(?:com|net|org|co\.uk|io|info|biz|xyz|ru|tk|cc)\b)"
)
# A spaced or spelt-out dot inside an address that starts with "www": the "www" says it is one,
# whatever its ending ("www . bizz . cash", "www dot fastloans dot win"), so no list of endings.
# A dot with a space after it and none before ends a sentence ("www.bbc.co.uk. Then") and is not
# joined, except right after "www" ("www. example .com").
_WWW_DOT = re.compile(r"\s*(?:\.|" + _SPELT_DOT + r")\s*")  # any dot, spaced or spelt out
_DOT_PIECE = r"(?:\s+\.\s*|\.(?!\s)|\s*(?:" + _SPELT_DOT + r")\s*)"  # ... but not a sentence end
_WWW_SPACED = re.compile(r"\bwww" + _WWW_DOT.pattern + r"[a-z0-9-]{2,}(?:" + _DOT_PIECE + r"[a-z0-9-]{2,}){1,4}")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_HTML_BITS = re.compile(r"<\s*br\s*/?\s*>|&(?:#\d+|#x[0-9a-f]+|[a-z]+);", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalized text and, per normalized character, the index of its original character.

    `offsets` has one more entry than `text`: the last one is `len(original)`, so a normalized
    slice [i, j) maps to the original slice [offsets[i], offsets[j-1] + 1).
    """

    original: str
    text: str
    offsets: tuple[int, ...] | None  # None: identity mapping (plain ASCII that needed no change)
    obfuscated: bool
    tricks: tuple[int, ...] = ()  # original indices where an obfuscation was undone

    def to_normalized(self, position: int) -> int:
        """The normalized index of an original character (the first one it became)."""
        return position if self.offsets is None else bisect_left(self.offsets, position)

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalized [start, end) to the original string's [start, end)."""
        if self.offsets is None:
            return start, end
        if end <= start:
            pos = self.offsets[min(start, len(self.offsets) - 1)]
            return pos, pos
        return self.offsets[start], self.offsets[end - 1] + 1


def _substitute(
    text: str, offsets: list[int], pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]
) -> tuple[str, list[int], list[int]]:
    """Apply a regex substitution while carrying the offset map along; also returns the original
    index of every substitution made (empty when nothing changed)."""
    pieces: list[str] = []
    new_offsets: list[int] = []
    last = 0
    changed: list[int] = []
    for match in pattern.finditer(text):
        start, end = match.span()
        replacement = repl(match)
        if replacement == match.group(0):
            continue
        changed.append(offsets[start] if start < len(offsets) else offsets[-1])
        pieces.append(text[last:start])
        new_offsets.extend(offsets[last:start])
        pieces.append(replacement)
        width = max(end - start, 1)
        # Spread the replacement's characters over the matched characters, first to first and
        # last to last, so a span over the replacement maps to the whole original run.
        last_k = max(len(replacement) - 1, 1)
        for k in range(len(replacement)):
            new_offsets.append(offsets[start + min(width - 1, round(k * (width - 1) / last_k))])
        last = end
    if not changed:
        return text, offsets, changed
    pieces.append(text[last:])
    new_offsets.extend(offsets[last:])
    return "".join(pieces), new_offsets, changed


def _html_piece(match: re.Match[str]) -> str:
    piece = match.group(0)
    if piece[0] == "<":
        return " "
    return html.unescape(piece)


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    """Lower-case, strip accents, undo width/compatibility forms and script look-alikes."""
    if ch in _INVISIBLE:
        return ""
    if ch in _CONFUSABLES:
        return _CONFUSABLES[ch]
    folded = unicodedata.normalize("NFKD", ch)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return "".join(_CONFUSABLES.get(c, c) for c in folded)


def visible_length(text: str) -> int:
    """`len(text)` without the invisible characters `normalize` drops: a comment with a zero-width
    space between every letter is as long as its reader (and a rater) sees it."""
    if text.isascii():
        return len(text)
    return len(text) - sum(text.count(ch) for ch in _INVISIBLE)


def is_blank(text: str) -> bool:
    """True when `text` shows nothing: only whitespace, invisible format characters (zero-width
    spaces and joiners, BOM, soft hyphen) or control characters. Such a comment has no words to
    score and no reader would see it, so `moderato score` and every API route treat it as empty."""
    return all(ch.isspace() or unicodedata.category(ch) in ("Cf", "Cc") for ch in text)


def normalize(original: str) -> Normalized:
    """Fold case and obfuscation; keep a map to the original. Fast path for clean ASCII text."""
    tricks: list[int] = []
    if original.isascii():
        text = original.lower()
        offsets: list[int] | None = None
    else:
        # ASCII runs only need lower-casing; fold the other characters one by one.
        pieces: list[str] = []
        offsets = []
        last = 0
        for match in _NON_ASCII.finditer(original):
            i = match.start()
            pieces.append(original[last:i].lower())
            offsets.extend(range(last, i))
            ch = match.group()
            folded = _fold_char(ch)
            if ch in _INVISIBLE or ch in _CONFUSABLES:
                tricks.append(i)
            pieces.append(folded)
            offsets.extend([i] * len(folded))
            last = i + 1
        pieces.append(original[last:].lower())
        offsets.extend(range(last, len(original)))
        text = "".join(pieces)

    if "&" in text or "<" in text:
        offsets = list(range(len(text))) if offsets is None else offsets
        text, offsets, _ = _substitute(text, offsets, _HTML_BITS, _html_piece)
        text = text.lower()

    def _ensure() -> list[int]:
        return list(range(len(text))) if offsets is None else offsets

    if _SPACED_DOMAIN.search(text):
        text, offsets, changed = _substitute(text, _ensure(), _SPACED_DOMAIN, lambda m: m.group(0).replace(" ", ""))
        tricks.extend(changed)
    if _SPACED.search(text):
        text, offsets, changed = _substitute(text, _ensure(), _SPACED, _collapse_spaced)
        tricks.extend(changed)
    if "www" in text and _WWW_SPACED.search(text):
        text, offsets, changed = _substitute(text, _ensure(), _WWW_SPACED, lambda m: _WWW_DOT.sub(".", m.group(0)))
        tricks.extend(changed)
    if "dot" in text or "[." in text or "(." in text or " ." in text:
        text, offsets, changed = _substitute(text, _ensure(), _DOT_WORD, lambda m: ".")
        tricks.extend(changed)
    if _LEET_CHAR.search(text) and _LEET_TOKEN.search(text):
        text, offsets, changed = _substitute(text, _ensure(), _LEET_TOKEN, _unleet)
        tricks.extend(changed)
    if offsets is None:
        return Normalized(original, text, None, bool(tricks), tuple(tricks))
    offsets.append(len(original))
    return Normalized(original, text, tuple(offsets), bool(tricks), tuple(sorted(set(tricks))))


def _collapse_spaced(match: re.Match[str]) -> str:
    piece = match.group(0)
    letters = [c for c in piece if c.isalpha()]
    # "a b c" style lists of real one-letter words ("a", "i") stay as they are.
    if len(letters) < 3 or all(c in "ai" for c in letters):
        return piece
    return "".join(letters)


_UNIT_SUFFIX = re.compile(r"^\d+(?:st|nd|rd|th|s|k|m|b|am|pm|x|mb|gb|tb|hz|km|kg|ml|mm|cm|p|g|v|w|mph)$")


def _unleet(match: re.Match[str]) -> str:
    token = match.group(0)
    if _UNIT_SUFFIX.match(token) or not _LEET_INNER.search(token):
        return token
    return token.translate(_LEET)


# --- segmentation ---------------------------------------------------------------------------

# Sentence ends: terminal punctuation followed by space, line breaks, or clause breaks that
# spammers use to glue a plug onto a genuine comment (" - ", "; ", " | "). A full stop after a
# single letter ("u.s.", "a.m.", "j. smith") or a common abbreviation ("spokes & co. on queen's
# road", "dr. patel") does not end a sentence: a plug naming "Smith & Co." would otherwise be cut
# in two at the company's name. (Python needs fixed-width look-behinds, hence one per length.)
# (The leading look-aheads only let positions that can start a break try the alternatives: speed.)
_NOT_AN_END = (
    r"(?<!\b[a-z]\.)"
    r"(?<!\b(?:mr|ms|dr|st|co|jr|sr|vs|mt|lt|rd)\.)"
    r"(?<!\b(?:mrs|ltd|inc|sgt|ave|rev|gen|col)\.)"
    r"(?<!\b(?:prof|corp|dept|capt|govt|bros)\.)"
)
_SENTENCE_BREAK = re.compile(
    rf"(?=[\s;\"')\]])(?:(?<=[.!?…]){_NOT_AN_END}[\"')\]]*\s+|\n+|\s{{1,40}}[-–—|]{{1,2}}\s+|;\s+)"
    r"|(?=[A-Z])(?<=[.!?])"
)
# A bare domain ("incmedia.org", "ketocoffee.store/deal"): labels of two or more characters, so
# "e.g." or "u.s." are not domains.
_DOMAIN = r"[a-z0-9][a-z0-9-]{1,62}(?:\.[a-z0-9-]{2,63}){0,8}\.[a-z]{2,10}\b(?:/[^\s)\]]*)?"
_WORD = re.compile(rf"https?://\S+|www\.\S+|{_DOMAIN}|[a-z0-9]+(?:['’][a-z]+)*|[$€£¥]\d[\d,.]*|[^\sa-z0-9]")
IS_LINK = re.compile(rf"https?://\S+|www\.\S+|{_DOMAIN}")


_DOT_LETTER = re.compile(r"\.[a-z]")


def might_hold_link(text: str) -> bool:
    """False when no link pattern (`IS_LINK`, `URL`, `SHORT_LINK`) can match normalized text: each
    needs "://", "www." or a dot before a letter. Most comments have none of these, and checking
    costs far less than running the link patterns."""
    return "://" in text or "www." in text or _DOT_LETTER.search(text) is not None


# Crafted text must not cost seconds. A pattern that restarts at every position of a long run and
# scans to its end is quadratic (20,000 characters of "1-1-1-..." took 3 s, of spaces before ". com"
# 8 s). So runs are bounded: links and phone numbers here (_RUN, longer than any such run in our
# data: 353 characters), _DOMAIN's labels to DNS's 63 characters, _SPACED_DOMAIN, URL, PRICE, MONEY
# and the dash break of _SENTENCE_BREAK; and a pattern that opens with optional white space starts
# only where a run of it starts (`(?<!\s)`: a later start in the same run would fail the same way).
# With all of this, the analysis of each of the 70,523 texts of training_data/ and ../shared/corpora
# is identical, so the shipped bundle is unchanged.
_RUN = 400
# A link followed by more text, and a parenthetical aside of six or more words:
# places where a plug is glued into a sentence without punctuation.
_LINK_THEN_TEXT = re.compile(rf"(?:https?://\S{{1,{_RUN}}}+|www\.\S{{1,{_RUN}}}+|{_DOMAIN})\s+(?=\S)")
_PHONE_THEN_TEXT = re.compile(rf"(?<![\w.,$£€])\+?\d[\d().-]{{0,{_RUN}}}+(?: \d[\d().-]{{0,{_RUN}}}+){{0,3}}\s+(?=\S)")
_PHONE_DIGITS = 9  # a number glued to the next sentence ends a plug only if it is phone-length
_ASIDE = re.compile(r"(?<!\s)\s*\(([^()]{8,300})\)[.,;:!?]*")
_ASIDE_WORDS = 6


def plug_breaks(normalized: Normalized) -> list[tuple[int, int]]:
    """Extra sentence boundaries (as separator spans) where a plug tends to be glued in.

    After a link or a phone number when the original text goes on with a capital, a digit or a
    symbol ("...sentinelops-recruit.com 71,000 personnel", "hotmeetz.live 😘 Ostrowski", "call
    01632 555 014 The scheme"), and around a parenthetical aside that is a clause of its own (a
    bare "(brand.com)" stays with its sentence). Casing is read from the original text: the
    normalized text is lower case.
    """
    text, original = normalized.text, normalized.original
    breaks: list[tuple[int, int]] = []
    links = _LINK_THEN_TEXT.finditer(text) if might_hold_link(text) else ()
    phones = (m for m in _PHONE_THEN_TEXT.finditer(text) if sum(map(str.isdigit, m.group(0))) >= _PHONE_DIGITS)
    for match in itertools.chain(links, phones):
        before = text[: match.start()].rstrip()
        if not before or before[-1] in ".!?…\n":
            continue  # a link or number that opens its sentence leads into the words after it
        position = normalized.to_original(match.end(), match.end() + 1)[0]
        following = original[position] if position < len(original) else ""
        if following and (following.isupper() or following.isdigit() or not following.isalnum()):
            breaks.append((match.end() - 1, match.end()))
    for match in _ASIDE.finditer(text) if "(" in text else ():
        inner = match.group(1)
        if len(inner.split()) >= _ASIDE_WORDS:
            breaks.append((match.start(), match.start(1)))
            breaks.append((match.end(1), match.end()))
    return breaks


def sentence_spans(text: str, breaks: Iterable[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Split into sentence-like [start, end) spans, trimmed of surrounding white space.

    Regex-based rather than Punkt: it runs for every request, has to treat line breaks and
    " - " clause joins as boundaries (where plugs are glued on), and needs no trained data.
    `breaks` adds separator spans found elsewhere (see `plug_breaks`).
    """
    separators = [m.span() for m in _SENTENCE_BREAK.finditer(text)]
    if breaks:
        separators = sorted([*separators, *breaks])
    separators.append((len(text), len(text)))
    out = []
    start = 0
    for sep_start, sep_end in separators:
        if sep_start > start:
            piece = text[start:sep_start]
            kept = piece.strip()
            if kept:
                first = start + len(piece) - len(piece.lstrip())
                out.append((first, first + len(kept)))
        start = max(start, sep_end)
    return out


def word_spans(text: str, start: int = 0, end: int | None = None) -> Iterator[re.Match[str]]:
    """Word-ish tokens of normalized (lower-case) text[start:end]: words, URLs, prices, symbols."""
    return _WORD.finditer(text, start, len(text) if end is None else end)


# --- cheap signals --------------------------------------------------------------------------

URL = re.compile(
    r"https?://\S+|www\.\S+|\b[a-z0-9-]{2,63}\.(?:com|net|org|io|co|xyz|info|biz|ru|me|ly|app|shop|site|online"
    r"|store|link|top|us|uk|cc|tk|gg|gl)\b(?:/\S*)?"
)
SHORT_LINK = re.compile(
    r"\b(?:bit\.ly|tinyurl\.com|t\.co|goo\.gl|is\.gd|ow\.ly|rb\.gy|cutt\.ly|shorturl\.at|t\.me|wa\.me)\b"
)
CONTACT = re.compile(
    r"\b(?:telegram|whatsapp|whats app|signal|wechat|kik|snapchat|instagram|insta|tiktok|twitter|dm me|inbox me|"
    r"text me|message me|follow me|subscribe to my|check out my|visit my)\b"
    r"|@[a-z0-9_]{3,}|\+?\d[\d\s().-]{8,}\d"
)
PRICE = re.compile(
    r"[$€£¥]\s?\d[\d,.]*|\b\d[\d,.]{0,30}\s?(?:usd|dollars|bucks|per month|/month|/mo|/hr|/hour|a month|an hour)\b"
)
# "only $25/month", "just £9 a month", "as low as $3/week" (but not "from just $200/month", a rise).
PRICE_BOAST = re.compile(
    r"(?<!from )\b(?:only|just|as low as|as little as|down to|now)\s+[$€£]?\s?\d[\d,.]*\s?"
    r"(?:/|a |an |per )?\s?(?:month|mo|year|yr|week|wk|day|hour|hr)\b"
)
# A price that went UP ("up to $450/month from just $200", "went up to £90"): a complaint, not a boast.
PRICE_RISE = re.compile(
    r"\b(?:up to|up from|risen to|rose to|went up|gone up|goes up|increased|jumped|doubled|tripled|hiked|climbed|"
    r"more than doubled)\b[^.!?]{0,40}?[$€£]?\d"
)
# "from $142 a month to $47" / "pay $40 instead of $95": which way the price moved tells a
# complaint (up) from a switching testimonial (down).
_FROM_TO = re.compile(
    r"\bfrom (?:just |only |about |around )?[$€£]?\s?(\d[\d,]*(?:\.\d+)?)[^.!?]{0,30}? to [$€£]?\s?(\d[\d,]*(?:\.\d+)?)"
)
_INSTEAD = re.compile(r"[$€£]\s?(\d[\d,]*(?:\.\d+)?)[^.!?]{0,25}? instead of [$€£]?\s?(\d[\d,]*(?:\.\d+)?)")


def price_moves(text: str) -> list[tuple[int, str]]:
    """(position, "s:price_drop" | "s:price_rise") for every from-to or instead-of price pair."""
    moves = []
    for pattern, new_first in ((_FROM_TO, False), (_INSTEAD, True)):
        for match in pattern.finditer(text):
            try:
                first, second = (float(g.replace(",", "")) for g in match.groups())
            except ValueError:
                continue
            old, new = (second, first) if new_first else (first, second)
            if new != old:
                moves.append((match.start(), "s:price_drop" if new < old else "s:price_rise"))
    return moves


# A brand named in passing, read from the original (cased) text: a capitalised name right after
# "through / with / from / at / via / using / switched to ..." ("through Havenlend", "moved my ISA
# to Fernvest") or a CamelCase name anywhere ("YieldNest", "PayPocket"). News comments name people
# and places the same way, so alone it is weak; next to a price or a rate in the same sentence, or
# unknown to the article, it is a testimonial.
_NOT_BRANDS = (
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|April|May|June|"
    r"July|August|September|October|November|December|Christmas|Easter)\b"
)
BRAND = re.compile(
    r"\b(?:through|with|from|at|via|using|on|into|thanks to"
    r"|(?i:try|tried|use|joined|recommend|(?:switched|moved|changed|went over|signed up)(?: \w+){0,2} (?:to|with|for)))"
    rf"\s+(?:the\s+)?(?!{_NOT_BRANDS})[A-Z][a-z]+"
    r"|\b[A-Z][a-z]+[A-Z][A-Za-z]*\b"
)
# Any capitalised name inside a sentence (not its first word): "Keyfast Locks did ours", "I pay
# Erasa 8 bucks". Unknown to the article it is a weaker cue than BRAND's context but a far more
# general one: 60% of the plug sentences in our data have one, 8-12% of genuine sentences.
NAME = re.compile(rf"(?<=[ \t])(?<![.!?:;\"(\u201c] )(?!{_NOT_BRANDS})[A-Z][a-z]+(?:[A-Z][a-z]*)*\b")
RATE = re.compile(r"\b\d+(?:\.\d+)?\s?%")
# A testimonial speaks in the first person and claims a benefit: with a brand the article never
# mentions in the same sentence these make "I moved my ISA to Fernvest, 8.2% and no fees" a plug.
FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|my|me|we|we've|our|us)\b")
BENEFIT = re.compile(
    r"\b(?:saved?|saving|cheaper|cheapest|cut|down to|dropped|halved|returned|approved|paid off|"
    r"worth (?:it|a look)|recommend\w*|brilliant|best|no fees?|free|cashback|refund\w*|discount|code|"
    r"up \d+%|guaranteed|same day)\b"
)

# An income claim: money with the period it was earned in ("makes $83 an hour", "$11,232 last
# week", "₦1.8 million monthly", "5k a month"). Alone it is usually a reader's own wage or bill;
# with WORK_ANYWHERE in the same sentence it is the oldest spam of news comment sections ("my
# friend's mom makes $83 an hour on the internet"), which often carries no link at all.
MONEY = re.compile(
    r"[$€£¥₹₦₱]\s?\d|\b\d[\d,.]{0,30}\s?(?:k|grand|million|usd|dollars|bucks|pounds|euros|quid|rupees|naira|pesos)\b"
)
PERIOD = re.compile(
    r"\b(?:an?|per|each|every|this|last)\s(?:hour|hr|day|week|month|night|shift)\b|\b(?:daily|weekly|monthly|hourly)\b"
    r"|/\s?(?:hr|h|hour|day|wk|week|mo|month)\b|\bin (?:\d+|one|two|three|four|a|just a) (?:days?|weeks?|months?)\b"
)
WORK_ANYWHERE = re.compile(
    r"\b(?:online|on-line|(?:on|from) the (?:internet|net)|internet|(?:from|at) home|home[- ]?based|laptop|"
    r"from my (?:phone|couch|sofa|bed|room|kitchen)|part[- ]?time|(?:a )?few hours|side (?:hustle|income|gig)|"
    r"remote(?:ly)?|passive income|no experience)\b"
)

# Where a sentence ends for `signals` (not inside "$1.8" or "site.com").
_CLAUSE_END = re.compile(r"[.!?](?:\s|$)|\n")


def income_claim(sentence: str) -> int:
    """0: no income claim in this sentence; 1: money with a period ("$24 an hour"); 2: the same with
    WORK_ANYWHERE words ("$83 an hour on the internet"). One test for the sentence features and
    for the reason signal."""
    if not (MONEY.search(sentence) and PERIOD.search(sentence)):
        return 0
    return 2 if WORK_ANYWHERE.search(sentence) else 1


# A source named in passing: "(from Eagle)", "(via SwiftCover)", "thanks to LoanBridge".
ATTRIBUTION = re.compile(r"\((?:from|via|with|through|thanks to|at|by)\s+[^()]{2,40}\)|\bthanks to [a-z0-9]")
PROMO = re.compile(
    r"\b(?:click|visit|check out|sign up|signup|subscribe|promo|discount|coupon|free|guaranteed|earn|income|"
    r"profit|invest|bitcoin|crypto|forex|casino|viagra|cialis|pills|pharmacy|loan|cash|win|winner|prize|"
    r"dating|hookup|essay|seo|backlinks|follow me|my channel|my site|my blog|my page)\b"
)


def signals(text: str, *, obfuscated: bool = False) -> list[str]:
    """Named, human-readable hints found in normalized text, for the `signals` of a reason."""
    found = []
    if URL.search(text):
        found.append("link")
    if SHORT_LINK.search(text):
        found.append("short_link")
    if CONTACT.search(text):
        found.append("contact_handle")
    if PRICE.search(text):
        found.append("price")
    if MONEY.search(text) and any(income_claim(clause) == 2 for clause in _CLAUSE_END.split(text)):
        found.append("income_claim")
    if PROMO.search(text):
        found.append("promo_words")
    if obfuscated:
        found.append("obfuscation")
    return found
