"""Entity tags for tasks (``ETag: "<version>"``) and the conditional headers that use them."""

from __future__ import annotations

import re
from typing import Final

_MAX_VERSION: Final = 2**63 - 1  # versions are bigints; a bigger tag names no version
_ENTITY_TAG: Final = re.compile(r'(W/)?"([\x21\x23-\x7e]*)"')


def _is_version(value: str) -> bool:
    # The tag exactly as entity_tag writes it: ASCII digits (isdigit takes Arabic-Indic ones too),
    # no leading zero ("07" is another tag than "7"), short enough to convert, in range.
    return (
        len(value) <= len(str(_MAX_VERSION))
        and value.isascii()
        and value.isdigit()
        and not value.startswith("0")
        and int(value) <= _MAX_VERSION
    )


def entity_tag(version: int) -> str:
    """The strong entity tag of a task version."""
    return f'"{version}"'


def _names_any(header: str) -> bool:
    # "*" is a header of its own, but may come joined to tags from another line: it still counts.
    return any(item.strip() == "*" for item in header.split(","))


def _tags(header: str) -> list[tuple[bool, str]]:
    return [(weak == "W/", value) for weak, value in _ENTITY_TAG.findall(header)]


def if_match_versions(header: str | None) -> frozenset[int] | None:
    """The versions an ``If-Match`` header accepts; ``None`` when it sets no condition.

    ``*`` (or no header) means any current version. Comparison is strong (RFC 9110 13.1.1): weak
    tags never match, and a header naming no usable tag matches nothing (412 for an existing task).
    """
    if header is None or header.strip() == "*":
        return None
    return frozenset(int(value) for weak, value in _tags(header) if not weak and _is_version(value))


def if_none_match_hits(header: str | None, version: int) -> bool:
    """Whether ``If-None-Match`` names this version (weak comparison, RFC 9110 13.1.2)."""
    if header is None:
        return False
    if _names_any(header):
        return True
    return any(value == str(version) for _, value in _tags(header))


def write_conditions(
    if_match: str | None, if_none_match: str | None
) -> tuple[frozenset[int] | None, frozenset[int]]:
    """What a write requires of the current version: (one of these, or any; none of these).

    ``If-None-Match`` on a write is evaluated too (RFC 9110 13.1.2; weak comparison): ``*``
    holds for no existing task, so it accepts no version; named versions are refused.
    """
    expected = if_match_versions(if_match)
    if if_none_match is None:
        return expected, frozenset()
    if _names_any(if_none_match):
        return frozenset(), frozenset()
    refused = frozenset(int(value) for _, value in _tags(if_none_match) if _is_version(value))
    if expected is not None:
        return expected - refused, frozenset()
    return None, refused
