"""Rules for the text a user may store: what is trimmed, how long it may be, what it may hold."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

from domain.errors import InvalidTask

TITLE_MAX_LENGTH: Final = 500
DESCRIPTION_MAX_LENGTH: Final = 5000
USER_ID_MAX_LENGTH: Final = 255
TAG_MAX_LENGTH: Final = 50
TAGS_MAX: Final = 20

# Embedding, override and isolate controls can make a title display as another text (the
# "Trojan Source" trick); a title has no use for them.
_BIDI_CONTROL: Final = re.compile(r"[\u202a-\u202e\u2066-\u2069]")

# Every control character (Unicode's category Cc: C0, DEL and C1) breaks PostgreSQL (NUL),
# terminals or browsers, and a lone surrogate (Cs, which JSON's ``\ud800`` escapes can produce)
# cannot be encoded as UTF-8 at all: both are refused rather than stored. Character classes, so
# that a check costs the same small time however long the text.
_UNSTORABLE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# One-line text (a title, a tag) takes no line break: neither a control character's nor Unicode's
# line and paragraph separators (which also end a line in many renderers).
_LINE_BREAK: Final = re.compile(r"[\u2028\u2029]")
# Line breaks and tabs are part of ordinary prose.
_UNSTORABLE_IN_PROSE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _first(characters: re.Pattern[str], text: str) -> str | None:
    """The first character of ``text`` in the class ``characters``, if any."""
    found = characters.search(text)
    return None if found is None else found.group()


def _refusal(char: str) -> str:
    kind = "unpaired surrogates" if unicodedata.category(char) == "Cs" else "control characters"
    return f"must not contain {kind} (found U+{ord(char):04X})"


def clean_title(raw: str) -> str:
    """Validate a title and return it trimmed of surrounding white space.

    Raises ``InvalidTask`` when it is empty after trimming, longer than 500 characters, holds a
    control or bidirectional control character, or shows nothing (only zero-width characters).
    """
    title = raw.strip()
    if not title:
        raise InvalidTask("title", "must not be empty")
    if len(title) > TITLE_MAX_LENGTH:
        raise InvalidTask("title", f"must be at most {TITLE_MAX_LENGTH} characters")
    bad = _first(_UNSTORABLE, title)
    if bad is not None:
        raise InvalidTask("title", _refusal(bad))
    bidi = _first(_BIDI_CONTROL, title)
    if bidi is not None:
        raise InvalidTask(
            "title", f"must not contain bidirectional controls (found U+{ord(bidi):04X})"
        )
    separator = _first(_LINE_BREAK, title)
    if separator is not None:
        raise InvalidTask("title", f"must not contain line breaks (found U+{ord(separator):04X})")
    if all(unicodedata.category(char) in ("Cf", "Zs", "Zl", "Zp") for char in title):
        raise InvalidTask("title", "must contain a visible character")
    return title


def clean_description(raw: str | None) -> str | None:
    """Validate a description (kept as written) and return it; ``None`` means no description."""
    if raw is None:
        return None
    if len(raw) > DESCRIPTION_MAX_LENGTH:
        raise InvalidTask("description", f"must be at most {DESCRIPTION_MAX_LENGTH} characters")
    bad = _first(_UNSTORABLE_IN_PROSE, raw)
    if bad is not None:
        raise InvalidTask("description", _refusal(bad))
    return raw


def clean_tag(raw: str, *, field: str = "tags") -> str:
    """The one tag rule: trimmed, lower-cased, composed, 1-50 characters, visible, no controls.

    Composed (Unicode NFC): "é" typed as one character or as "e" and a combining accent looks
    the same, so it is the same tag. ``field`` names the input in the error (``tags`` in a body,
    ``tag`` in a listing's filter).
    """
    tag = unicodedata.normalize("NFC", raw.strip().lower())
    if not tag:
        raise InvalidTask(field, "must not hold an empty tag")
    if len(tag) > TAG_MAX_LENGTH:
        raise InvalidTask(field, f"must hold tags of at most {TAG_MAX_LENGTH} characters")
    bad = _first(_UNSTORABLE, tag) or _first(_BIDI_CONTROL, tag) or _first(_LINE_BREAK, tag)
    if bad is not None:
        raise InvalidTask(field, f"must not hold control characters (found U+{ord(bad):04X})")
    if all(unicodedata.category(char) in ("Cf", "Zs", "Zl", "Zp") for char in tag):
        raise InvalidTask(field, "must hold tags with a visible character")
    return tag


def clean_tags(raw: Iterable[str]) -> tuple[str, ...]:
    """A task's tags as a set: each cleaned by ``clean_tag``, duplicates collapsed, sorted; 0-20."""
    tags = tuple(sorted({clean_tag(tag) for tag in raw}))
    if len(tags) > TAGS_MAX:
        raise InvalidTask("tags", f"must hold at most {TAGS_MAX} tags")
    return tags


def refuse_control_characters(raw: str, field: str) -> str:
    """Return ``raw`` if it holds no control character or lone surrogate; else ``InvalidTask``."""
    bad = _first(_UNSTORABLE, raw)
    if bad is not None:
        raise InvalidTask(field, _refusal(bad))
    return raw


def is_valid_user_id(raw: str) -> bool:
    """Tell whether ``raw`` can name a task owner: 1-255 characters, no control characters."""
    return (
        0 < len(raw) <= USER_ID_MAX_LENGTH
        and raw.strip() == raw
        and _first(_UNSTORABLE, raw) is None
    )
