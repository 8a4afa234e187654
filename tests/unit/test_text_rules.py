from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidTask
from domain.text import (
    DESCRIPTION_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    clean_description,
    clean_tag,
    clean_title,
    refuse_control_characters,
)

EVERY_CHARACTER = [chr(point) for point in range(sys.maxunicode + 1)]
UNSTORABLE = {char for char in EVERY_CHARACTER if unicodedata.category(char) in ("Cc", "Cs")}
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Buy groceries", "Buy groceries"),
        ("  padded  ", "padded"),
        ("\u00a0nbsp\u3000", "nbsp"),
        ("émoji 🚀 ok", "émoji 🚀 ok"),
        ("👩\u200d💻 joiner inside an emoji", "👩\u200d💻 joiner inside an emoji"),
        ("עברית and English", "עברית and English"),
        ("x" * TITLE_MAX_LENGTH, "x" * TITLE_MAX_LENGTH),
        ("  " + "y" * TITLE_MAX_LENGTH + "  ", "y" * TITLE_MAX_LENGTH),
    ],
)
def test_valid_titles(raw: str, expected: str) -> None:
    assert clean_title(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "must not be empty"),
        ("   \t\n ", "must not be empty"),
        ("x" * (TITLE_MAX_LENGTH + 1), "at most 500"),
        ("nul\x00inside", "control characters (found U+0000)"),
        ("tab\tinside", "control characters (found U+0009)"),
        ("line\nbreak", "control characters (found U+000A)"),
        ("bell\x07", "control characters (found U+0007)"),
        ("del\x7f", "control characters (found U+007F)"),
        ("c1\x85inside", "control characters (found U+0085)"),
        ("lone \ud800 surrogate", "unpaired surrogates (found U+D800)"),
        ("invoice \u202egnp.exe", "bidirectional controls (found U+202E)"),
        ("a\u202ab", "bidirectional controls (found U+202A)"),
        ("x\u2066y\u2069", "bidirectional controls (found U+2066)"),
        ("\u2069", "bidirectional controls (found U+2069)"),
        ("line\u2028separator", "line breaks (found U+2028)"),
        ("paragraph\u2029separator", "line breaks (found U+2029)"),
        ("\u200b", "must contain a visible character"),
        ("\u200b\u200c\u200d\u2060\ufeff", "must contain a visible character"),
        ("\u200b \u200b", "must contain a visible character"),
    ],
)
def test_invalid_titles(raw: str, message: str) -> None:
    with pytest.raises(InvalidTask) as raised:
        clean_title(raw)
    assert raised.value.field == "title"
    assert message in raised.value.message


def test_description_keeps_whitespace_and_allows_line_breaks() -> None:
    assert clean_description("  a\n\tb\r\n  ") == "  a\n\tb\r\n  "
    assert clean_description(None) is None
    assert clean_description("") == ""
    assert clean_description("d" * DESCRIPTION_MAX_LENGTH) == "d" * DESCRIPTION_MAX_LENGTH


@pytest.mark.parametrize("raw", ["d" * (DESCRIPTION_MAX_LENGTH + 1), "nul\x00", "esc\x1b[31m"])
def test_invalid_descriptions(raw: str) -> None:
    with pytest.raises(InvalidTask) as raised:
        clean_description(raw)
    assert raised.value.field == "description"


@given(st.text(max_size=600))
def test_a_title_is_either_refused_or_clean(raw: str) -> None:
    try:
        title = clean_title(raw)
    except InvalidTask:
        return
    assert title == title.strip()
    assert 1 <= len(title) <= TITLE_MAX_LENGTH
    assert all(ord(char) >= 0x20 and not 0x7F <= ord(char) <= 0x9F for char in title)


# Format characters (Cf: zero-width ones, bidirectional controls) and Unicode's line and paragraph
# separators (Zl, Zp) have rules of their own, above.
@given(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cf", "Zl", "Zp"]),
        min_size=1,
    )
)
def test_printable_titles_of_legal_length_are_accepted(raw: str) -> None:
    if raw.strip() and len(raw.strip()) <= TITLE_MAX_LENGTH:
        assert clean_title(raw) == raw.strip()


def test_exactly_the_control_characters_and_lone_surrogates_are_refused() -> None:
    # Every other character of Unicode passes (in one text), and each of these is refused.
    storable = "".join(char for char in EVERY_CHARACTER if char not in UNSTORABLE)
    assert refuse_control_characters(storable, "q") == storable
    assert len(UNSTORABLE) == 65 + 2048
    for char in UNSTORABLE:
        with pytest.raises(InvalidTask) as raised:
            refuse_control_characters(f"a{char}b", "q")
        kind = "unpaired surrogates" if 0xD800 <= ord(char) <= 0xDFFF else "control characters"
        assert raised.value.message == f"must not contain {kind} (found U+{ord(char):04X})"


def test_a_description_allows_exactly_tabs_and_line_breaks_of_the_control_characters() -> None:
    refused = UNSTORABLE - set("\t\n\r")
    storable = "".join(char for char in EVERY_CHARACTER if char not in refused)
    for start in range(0, len(storable), DESCRIPTION_MAX_LENGTH):
        piece = storable[start : start + DESCRIPTION_MAX_LENGTH]
        assert clean_description(piece) == piece
    for char in refused:
        with pytest.raises(InvalidTask):
            clean_description(f"a{char}b")


def test_exactly_the_bidirectional_controls_are_refused_among_format_characters() -> None:
    for char in (char for char in EVERY_CHARACTER if unicodedata.category(char) == "Cf"):
        for check in (clean_title, clean_tag):
            if char in BIDI_CONTROLS:
                with pytest.raises(InvalidTask) as raised:
                    check(f"a{char}b")
                assert f"(found U+{ord(char):04X})" in raised.value.message
            else:
                assert check(f"a{char}b") == f"a{char}b"
