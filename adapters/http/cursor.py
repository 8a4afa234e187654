"""Opaque, tamper-evident page cursors for keyset pagination, and sync tokens of the change feed.

A cursor names where the previous page ended, for whom, under which filter and in which order,
encrypted and authenticated (AES-GCM): the position it holds (a task's title, in a title order)
never shows in a URL or a log, and a modified cursor, or one made for another user, filter or
order, is refused (400). It can never select another user's page, and decoding it never touches
the database. A sync token is sealed the same way, under a key of its own, and bound to its user.
The codecs take several keys: the first seals, each one opens, so that the tokens clients keep
(sync tokens, for 30 days) outlive a rotation of the secret behind the key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import secrets
from collections.abc import Sequence
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
            # The same search however typed: case and the words' order make no difference to it.
            # Folded as the search folds them (lower case, then ς as σ and ß as ss): casefold
            # would fold more (µ and μ, ﬁ and fi), which the search tells apart.
            sorted({word.lower().replace("ς", "σ").replace("ß", "ss") for word in where.words}),
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
    """AES-GCM under keys derived for one purpose: the first key seals, each opens."""

    def __init__(self, keys: Sequence[bytes], purpose: bytes) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._aeads = tuple(
            AESGCM(HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose).derive(key))
            for key in keys
        )
        self._purpose = purpose

    def seal(self, payload: list[object]) -> str:
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _b64(nonce + self._aeads[0].encrypt(nonce, data, self._purpose))

    def open(self, sealed_text: str, fields: int) -> list[object]:
        """The payload of ``fields`` values; raises ``InvalidCursor`` unless sealed here."""
        if len(sealed_text) > MAX_CURSOR_LENGTH or not sealed_text.isascii():
            raise InvalidCursor("is not valid")
        try:
            sealed = _unb64(sealed_text)
            payload = json.loads(self._decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]))
        except (binascii.Error, ValueError, InvalidTag):
            raise InvalidCursor("is not valid") from None
        if not isinstance(payload, list) or len(payload) != fields:
            raise InvalidCursor("is not valid")
        return payload

    def _decrypt(self, nonce: bytes, ciphertext: bytes) -> bytes:
        for aead in self._aeads:
            with contextlib.suppress(InvalidTag):
                return aead.decrypt(nonce, ciphertext, self._purpose)
        raise InvalidTag


class CursorCodec:
    """Encodes and checks cursors with server-side keys (shared by every replica).

    ``keys``: the first seals; each opens (earlier keys, during a rotation).
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._seal = _Seal(keys, _PURPOSE)

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
    """Encodes and checks the change feed's sync tokens (``next``, ``since``, event ids).

    ``keys``: the first seals; each opens (earlier keys, during a rotation).
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._seal = _Seal(keys, _SYNC_PURPOSE)

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
