"""Normalization must see through obfuscation and still point back into the original text."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from classifier.text import _CONFUSABLES, _INVISIBLE, normalize, plug_breaks, sentence_spans, signals, visible_length


def test_plain_ascii_is_lowercased_with_identity_offsets():
    n = normalize("Hello World")
    assert n.text == "hello world"
    assert n.to_original(0, 5) == (0, 5)
    assert not n.obfuscated


def test_spaced_hyphenated_and_dotted_words_are_joined():
    assert "viagra" in normalize("buy v i a g r a now").text
    assert "casino" in normalize("best c-a-s-i-n-o bonus").text
    assert "example.com" in normalize("visit ex4mple dot com").text
    assert "rovers-live.xyz" in normalize("stream it free at rovers-live .xyz no signup").text
    assert "ended . me" in normalize("It ended . Me and you went home.").text
    # after "www" any ending is joined, spaced or spelt out; offsets still cover the original
    n = normalize("Cheap loans at www . bizz . cash today, or WWW dot fastloans dot win")
    assert "www.bizz.cash today" in n.text and "www.fastloans.win" in n.text and n.obfuscated
    start = n.text.index("www.bizz")
    o_start, o_end = n.to_original(start, start + len("www.bizz.cash"))
    assert n.original[o_start:o_end] == "www . bizz . cash"
    assert normalize("www. example .com").text == "www.example.com"
    assert normalize("see www.bbc.co.uk. Then").text == "see www.bbc.co.uk. then"


def test_leetspeak_is_undone_but_numbers_and_units_are_not():
    text = normalize("fr33 b1tcoin on the 25th at 10pm for $25/month, covid19").text
    assert "free bitcoin" in text
    assert "25th" in text and "10pm" in text and "$25/month" in text and "covid19" in text


def test_confusables_and_zero_width_characters_are_folded():
    original = "Play саsinо\u200b games"  # Cyrillic с, а, о and a zero-width space
    n = normalize(original)
    assert "casino" in n.text
    assert n.obfuscated
    start = n.text.index("casino")
    o_start, o_end = n.to_original(start, start + len("casino"))
    assert original[o_start:o_end] == "саsinо"


def test_offsets_of_collapsed_spaced_letters_cover_the_original_run():
    original = "Cheap v i a g r a here"
    n = normalize(original)
    start = n.text.index("viagra")
    o_start, o_end = n.to_original(start, start + 6)
    assert original[o_start:o_end] == "v i a g r a"


def test_html_entities_and_breaks_are_decoded():
    assert normalize("Tom &amp; Jerry<br />next").text == "tom & jerry next"


def test_sentences_split_on_punctuation_lines_and_glue_dashes():
    text = "first one. second one!\nthird - fourth"
    parts = [text[s:e] for s, e in sentence_spans(text)]
    assert parts == ["first one.", "second one!", "third", "fourth"]


def test_a_full_stop_after_an_initial_or_a_title_does_not_end_the_sentence():
    original = "Our bike from Spokes & Co. on Queen St. was 2,100. At 9 a.m. Dr. Patel said no. Then the U.S. team left"
    text = normalize(original).text
    parts = [text[s:e] for s, e in sentence_spans(text)]
    assert parts == [
        "our bike from spokes & co. on queen st. was 2,100.",
        "at 9 a.m. dr. patel said no.",
        "then the u.s. team left",
    ]


def test_signals_name_links_contacts_and_prices():
    found = signals("message me on telegram, only $25/month at bit.ly/x")
    assert {"short_link", "contact_handle", "price", "link"} <= set(found)


@given(st.text(max_size=300))
def test_offsets_always_map_inside_the_original(text):
    n = normalize(text)
    for start, end in sentence_spans(n.text):
        o_start, o_end = n.to_original(start, end)
        assert 0 <= o_start <= o_end <= len(text)


def test_a_spaced_dot_before_a_common_ending_is_a_domain_but_a_sentence_end_is_not():
    assert "instalend-uk.com" in normalize("at instalend-uk . com today").text
    assert "citrusathome.ca" in normalize("citrusathome dot ca").text
    assert normalize("It ended . Me and you").text == "it ended . me and you"


def test_tricks_record_where_in_the_original_an_obfuscation_was_undone():
    original = "Fine. Then T-a-l-l-y-l-o-a-n paid"
    n = normalize(original)
    assert n.tricks and all(original.index("T-a") <= i < original.index(" paid") for i in n.tricks)
    assert normalize("no tricks here").tricks == ()


def _segments(original: str) -> list[str]:
    n = normalize(original)
    return [n.text[s:e] for s, e in sentence_spans(n.text, plug_breaks(n))]


def test_a_plug_glued_on_after_a_link_is_its_own_sentence():
    assert _segments("apply at jobs-now.com 71,000 staff left.") == ["apply at jobs-now.com", "71,000 staff left."]
    assert _segments("chat at meetz.live 😘 Ostrowski is out") == ["chat at meetz.live", "😘 ostrowski is out"]
    # a lower-case continuation, or a link opening its sentence, stays in one piece
    assert _segments("see example.com for the details") == ["see example.com for the details"]
    assert _segments("bit.ly/x 🎁 first 500 get a fan") == ["bit.ly/x 🎁 first 500 get a fan"]


def test_a_phone_number_glued_to_the_next_sentence_ends_the_plug():
    assert _segments("Call 01632 555 014 The scheme is late.") == ["call 01632 555 014", "the scheme is late."]
    # ordinary numbers before a capital are not phone numbers
    assert len(_segments("In 2019 The council said 12 000 People came.")) == 1


def test_a_parenthetical_clause_is_split_off_but_a_bare_brand_is_not():
    parts = _segments("No antibiotics here (immunity gummies for kids, fewer sick days, kb-vit.com).")
    assert parts == ["no antibiotics here", "immunity gummies for kids, fewer sick days, kb-vit.com"]
    assert len(_segments("Only $25/month (from Insurance Panda) and more.")) == 1


# --- properties of normalize on adversarial text ---------------------------------------------------

_ODD = (
    "\u0301", "\u0308\u0323", "ﬁ", "ﬃ", "Ⅻ", "㎏", "¼", "ﷺ", "㏂", "⑴", "…", "Ｆｒｅｅ", "👩🏽‍👩🏽‍👧🏽", "👍🏿",
    "\U0001d400", "\u202e", "\u202d", "\r\n", "\r", "\u2028", "\x85", "\x01", "\x7f", "\u200b", "\u200d",
    "\ufeff", "\u00ad", "İ", "ß", "ǅ", "ΐ", "K", "שלום", "مرحبا", "名前", "саsinо", "&amp;", "<br>", "&#x41;",
    "v i a g r a", "c-a-s-i-n-o", "ex4mple dot com", "www . x . cash", "fr33", "b1tcoin", "$25", " ", ".",
)  # fmt: skip
ODD_TEXT = st.lists(st.one_of(st.sampled_from(_ODD), st.characters(exclude_categories=("Cs",))), max_size=30).map(
    "".join
)
PLAIN_TEXT = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ 0134578$@.-_*&;<>/\n"))
#: Look-alike letters from `normalize`'s own table, by the Latin letter they fold to.
_LOOK_ALIKES: dict[str, list[str]] = {}
for _alike, _latin in _CONFUSABLES.items():
    _LOOK_ALIKES.setdefault(_latin, []).append(_alike)


@settings(max_examples=200, deadline=None)
@given(ODD_TEXT)
@example("½")
def test_the_offset_map_is_monotonic_and_every_slice_maps_inside_the_original(text):
    n = normalize(text)
    if n.offsets is None:
        assert n.text == text.lower() and text.isascii()
        return
    assert len(n.offsets) == len(n.text) + 1 and n.offsets[-1] == len(text)
    assert all(0 <= a <= b for a, b in zip(n.offsets, n.offsets[1:], strict=False))
    assert all(0 <= i < len(text) for i in n.tricks)
    for i in range(len(n.text)):
        for j in (i + 1, len(n.text)):
            start, end = n.to_original(i, j)
            assert 0 <= start < end <= len(text)


@settings(max_examples=150, deadline=None)
@given(st.one_of(PLAIN_TEXT, ODD_TEXT), st.data())
def test_invisible_characters_anywhere_change_nothing_but_the_obfuscation_flag(text, data):
    stuffed = "".join(ch + data.draw(st.sampled_from(["", *sorted(_INVISIBLE)])) for ch in text)
    n, s = normalize(text), normalize(stuffed)
    assert s.text == n.text
    assert visible_length(stuffed) == visible_length(text)
    if stuffed != text:
        assert s.obfuscated


@settings(max_examples=150, deadline=None)
@given(PLAIN_TEXT, st.data())
def test_look_alike_letters_fold_back_to_the_latin_text(text, data):
    swapped = "".join(
        data.draw(st.sampled_from([ch, *_LOOK_ALIKES.get(ch.lower(), [])])) if ch.isalpha() else ch for ch in text
    )
    n, s = normalize(text), normalize(swapped)
    assert s.text == n.text
    assert s.obfuscated or swapped == text
    # a swap is one character for one: every normalized character maps where it did in the Latin text
    identity = (*range(len(n.text)), len(text))
    assert (s.offsets or identity) == (n.offsets or identity)
