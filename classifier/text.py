"""Text preparation: see through obfuscation while keeping a map back to the original text.

Spammers write "v i a g r a", "c-a-s-i-n-o", "ex4mple dot com", Cyrillic look-alikes and zero-width
characters so that filters see other words. `normalize` undoes those tricks and records, for every
character of the normalized text, the index of the original character it came from, so evidence
found in the normalized text can be reported as spans of the text the reader actually wrote.

Everything here is cheap and deterministic: it runs on every request.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

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
# A leet character between two letters ("b1tcoin"), or two or more trailing ones ("fr33").
_LEET_INNER = re.compile(r"[a-z][0134578$]+[a-z]|^[a-z]{2,}[0134578]{2,}$")
# Three or more single letters separated by the same spacer: "v i a g r a", "c-a-s-i-n-o", "f.r.e.e".
_SPACED = re.compile(r"\b[a-z](?:(?P<sep>[ .\-_*]{1,2})[a-z])(?:(?P=sep)[a-z])+\b")
# Spaced-out domains: "p h a r m a e a s y . b i z" (single letters, a spaced dot before the TLD).
_SPACED_DOMAIN = re.compile(r"\b[a-z](?: [a-z]){2,} ?\. ?[a-z](?: [a-z]){1,3}\b")
# "example dot com", "example (dot) net", "example[.]org".
_DOT_WORD = re.compile(
    r"\s*(?:\(dot\)|\[dot\]|\[\.\]|\(\.\)|\bdot\b)\s*"
    r"(?=(?:com|net|org|io|co|xyz|info|biz|ru|me|ly|app|shop|site|online|store|link|top|us|uk|cc|tk|gg)\b)"
)
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
) -> tuple[str, list[int], bool]:
    """Apply a regex substitution while carrying the offset map along."""
    pieces: list[str] = []
    new_offsets: list[int] = []
    last = 0
    changed = False
    for match in pattern.finditer(text):
        start, end = match.span()
        replacement = repl(match)
        if replacement == match.group(0):
            continue
        changed = True
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
        return text, offsets, False
    pieces.append(text[last:])
    new_offsets.extend(offsets[last:])
    return "".join(pieces), new_offsets, True


def _html_piece(match: re.Match[str]) -> str:
    piece = match.group(0)
    if piece[0] == "<":
        return " "
    return html.unescape(piece)


def _fold_char(ch: str) -> str:
    """Lower-case, strip accents, undo width/compatibility forms and script look-alikes."""
    if ch in _INVISIBLE:
        return ""
    if ch in _CONFUSABLES:
        return _CONFUSABLES[ch]
    folded = unicodedata.normalize("NFKD", ch)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return "".join(_CONFUSABLES.get(c, c) for c in folded)


def normalize(original: str) -> Normalized:
    """Fold case and obfuscation; keep a map to the original. Fast path for clean ASCII text."""
    obfuscated = False
    if original.isascii():
        text = original.lower()
        offsets: list[int] | None = None
    else:
        chars: list[str] = []
        offsets = []
        for i, ch in enumerate(original):
            if ch.isascii():
                chars.append(ch.lower())
                offsets.append(i)
                continue
            folded = _fold_char(ch)
            if ch in _INVISIBLE or ch in _CONFUSABLES:
                obfuscated = True
            for c in folded:
                chars.append(c)
                offsets.append(i)
        text = "".join(chars)

    if "&" in text or "<" in text:
        offsets = list(range(len(text))) if offsets is None else offsets
        text, offsets, _ = _substitute(text, offsets, _HTML_BITS, _html_piece)
        text = text.lower()

    def _ensure() -> list[int]:
        return list(range(len(text))) if offsets is None else offsets

    if _SPACED_DOMAIN.search(text):
        text, offsets, changed = _substitute(text, _ensure(), _SPACED_DOMAIN, lambda m: m.group(0).replace(" ", ""))
        obfuscated |= changed
    if _SPACED.search(text):
        text, offsets, changed = _substitute(text, _ensure(), _SPACED, _collapse_spaced)
        obfuscated |= changed
    if "dot" in text or "[." in text or "(." in text:
        text, offsets, changed = _substitute(text, _ensure(), _DOT_WORD, lambda m: ".")
        obfuscated |= changed
    if _LEET_TOKEN.search(text):
        text, offsets, changed = _substitute(text, _ensure(), _LEET_TOKEN, _unleet)
        obfuscated |= changed
    if offsets is None:
        return Normalized(original, text, None, obfuscated)
    offsets.append(len(original))
    return Normalized(original, text, tuple(offsets), obfuscated)


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
# spammers use to glue a plug onto a genuine comment (" - ", "; ", " | ").
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n+|\s+[-–—|]{1,2}\s+|;\s+|(?<=[.!?])(?=[A-Z])")
# A bare domain ("incmedia.org", "ketocoffee.store/deal"): labels of two or more characters, so
# "e.g." or "u.s." are not domains.
_DOMAIN = r"[a-z0-9][a-z0-9-]+(?:\.[a-z0-9-]{2,})*\.[a-z]{2,10}\b(?:/[^\s)\]]*)?"
_WORD = re.compile(rf"https?://\S+|www\.\S+|{_DOMAIN}|[a-z0-9]+(?:['’][a-z]+)*|[$€£¥]\d[\d,.]*|[^\sa-z0-9]")
IS_LINK = re.compile(rf"https?://\S+|www\.\S+|{_DOMAIN}")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split into sentence-like [start, end) spans, trimmed of surrounding white space.

    Regex-based rather than Punkt: it runs for every request, has to treat line breaks and
    " - " clause joins as boundaries (where plugs are glued on), and needs no trained data.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def word_spans(text: str, start: int = 0, end: int | None = None) -> Iterator[re.Match[str]]:
    """Word-ish tokens of normalized (lower-case) text[start:end]: words, URLs, prices, symbols."""
    return _WORD.finditer(text, start, len(text) if end is None else end)


# --- cheap signals --------------------------------------------------------------------------

URL = re.compile(
    r"https?://\S+|www\.\S+|\b[a-z0-9-]{2,}\.(?:com|net|org|io|co|xyz|info|biz|ru|me|ly|app|shop|site|online"
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
    r"[$€£¥]\s?\d[\d,.]*|\b\d[\d,.]*\s?(?:usd|dollars|bucks|per month|/month|/mo|/hr|/hour|a month|an hour)\b"
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
    if PROMO.search(text):
        found.append("promo_words")
    if obfuscated:
        found.append("obfuscation")
    return found
