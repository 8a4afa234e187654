"""Opaque, tamper-evident page cursors for keyset pagination, and sync tokens of the change feed.

A cursor names where the previous page ended, for whom, under which filter and in which order,
encrypted and authenticated (AES-GCM): the position it holds (a task's title, in a title order)
never shows in a URL or a log, and a modified cursor, or one made for another user, filter or
order, is refused (400). It can never select another user's page, and decoding it never touches
the database. A sync token is sealed the same way, under a key of its own, and bound to its user.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from application.listing import ListPosition, SortField, SortOrder, SortValue, TaskFilter
from application.sync import FeedPosition
from domain.task import Priority

_VERSION: Final = 3
_NONCE_BYTES: Final = 12
_PURPOSE: Final = b"taskapi page cursor"
_SYNC_PURPOSE: Final = b"taskapi sync token"
_SYNC_VERSION: Final = 2
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CURSOR_LENGTH: Final = 4096
"""Enough for a position at a 500-character title."""

_TIMES: Final = (SortField.CREATED_AT, SortField.UPDATED_AT, SortField.DUE_AT)
_PRIORITIES: Final = frozenset(Priority)


class InvalidCursor(ValueError):
    """The cursor was not made by this service for this user, filter and order."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // timedelta(microseconds=1)


def _digest(value: object) -> str:
    canonical = json.dumps(value, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest()[:12])


def _listing(where: TaskFilter, order: SortOrder) -> str:
    """A digest of the filters and the order: what, besides its owner, a cursor is bound to."""
    return _digest(
        [
            where.completed,
            sorted(where.priorities),
            where.tags,
            _micros(where.due_before),
            _micros(where.due_after),
            where.words,
            str(order),
        ]
    )


def _encoded(value: SortValue) -> int | str | None:
    if isinstance(value, datetime):
        return _micros(value)
    return value  # a Priority is a str; a title is one


def _decoded(field: SortField, value: object) -> SortValue:
    if field in _TIMES and isinstance(value, int):
        return _EPOCH + timedelta(microseconds=value)
    if field is SortField.DUE_AT and value is None:
        return None
    if field is SortField.PRIORITY and isinstance(value, str) and value in _PRIORITIES:
        return Priority(value)
    if field is SortField.TITLE and isinstance(value, str):
        return value
    raise InvalidCursor("is not valid")


class _Seal:
    """AES-GCM under a key derived for one purpose: what it seals, only it opens."""

    def __init__(self, key: bytes, purpose: bytes) -> None:
        derived = HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose).derive(key)
        self._aead = AESGCM(derived)
        self._purpose = purpose

    def seal(self, payload: list[object]) -> str:
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _b64(nonce + self._aead.encrypt(nonce, data, self._purpose))

    def open(self, sealed_text: str, fields: int) -> list[object]:
        """The payload of ``fields`` values; raises ``InvalidCursor`` unless sealed here."""
        if len(sealed_text) > MAX_CURSOR_LENGTH or not sealed_text.isascii():
            raise InvalidCursor("is not valid")
        try:
            sealed = _unb64(sealed_text)
            nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
            payload = json.loads(self._aead.decrypt(nonce, ciphertext, self._purpose))
        except (binascii.Error, ValueError, InvalidTag):
            raise InvalidCursor("is not valid") from None
        if not isinstance(payload, list) or len(payload) != fields:
            raise InvalidCursor("is not valid")
        return payload


class CursorCodec:
    """Encodes and checks cursors with a server-side key (shared by every replica)."""

    def __init__(self, key: bytes) -> None:
        self._seal = _Seal(key, _PURPOSE)

    def encode(
        self, owner: str, where: TaskFilter, order: SortOrder, position: ListPosition
    ) -> str:
        """A cursor for the page after ``position`` in this listing."""
        return self._seal.seal(
            [
                _VERSION,
                _digest(owner),  # the owner's digest: a user id may be long
                _listing(where, order),
                _encoded(position.value),
                position.task_id,
            ]
        )

    def decode(self, cursor: str, owner: str, where: TaskFilter, order: SortOrder) -> ListPosition:
        """The position in ``cursor``; raises ``InvalidCursor`` unless it is genuine and ours."""
        version, cursor_owner, listing, value, task_id = self._seal.open(cursor, 5)
        if version != _VERSION or cursor_owner != _digest(owner) or not isinstance(task_id, int):
            raise InvalidCursor("is not valid")
        if listing != _listing(where, order):
            raise InvalidCursor("was made for another filter or sort order")
        return ListPosition(_decoded(order.field, value), task_id)


class SyncTokenCodec:
    """Encodes and checks the change feed's sync tokens (``next``, ``since``, event ids)."""

    def __init__(self, key: bytes) -> None:
        self._seal = _Seal(key, _SYNC_PURPOSE)

    def encode(self, owner: str, position: FeedPosition) -> str:
        """The token of ``position`` in ``owner``'s feed."""
        return self._seal.seal(
            [
                _SYNC_VERSION,
                _digest(owner),
                position.seq,
                position.task_id,
                position.floor,
                _micros(position.as_of),
            ]
        )

    def decode(self, token: str, owner: str) -> FeedPosition:
        """The position in ``token``; raises ``InvalidCursor`` unless it is genuine and ours."""
        version, token_owner, seq, task_id, floor, as_of = self._seal.open(token, 6)
        if (
            version != _SYNC_VERSION
            or token_owner != _digest(owner)
            or not isinstance(seq, int)
            or not isinstance(task_id, int)
            or not isinstance(floor, int)
            or not isinstance(as_of, int)
        ):
            raise InvalidCursor("is not valid")
        return FeedPosition(seq, task_id, floor, _EPOCH + timedelta(microseconds=as_of))
