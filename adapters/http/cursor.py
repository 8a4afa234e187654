"""Opaque, tamper-evident page cursors for keyset pagination.

A cursor names where the previous page ended, for whom, and under which filter, signed with an
HMAC. A modified cursor, or one made for another user or another filter, is refused (400): it
can never select another user's page, and decoding it never touches the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Final

from application.ports import ListPosition

_VERSION: Final = 1
_MAC_BYTES: Final = 16
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CURSOR_LENGTH: Final = 512


class InvalidCursor(ValueError):
    """The cursor was not made by this service for this user and filter."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Encodes and checks cursors with a server-side key (shared by every replica)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, owner: str, completed: bool | None, position: ListPosition) -> str:
        """A cursor for the page after ``position``."""
        micros = (position.created_at - _EPOCH) // timedelta(microseconds=1)
        payload = json.dumps(
            [_VERSION, owner, completed, micros, position.task_id], separators=(",", ":")
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, cursor: str, owner: str, completed: bool | None) -> ListPosition:
        """The position in ``cursor``; raises ``InvalidCursor`` unless it is genuine and ours."""
        if len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
            raise InvalidCursor("is not valid")
        body, _, mac = cursor.partition(".")
        try:
            payload, signature = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise InvalidCursor("is not valid") from None
        if not hmac.compare_digest(signature, self._mac(payload)):
            raise InvalidCursor("is not valid")
        version, cursor_owner, cursor_completed, micros, task_id = json.loads(payload)
        if version != _VERSION or cursor_owner != owner:
            raise InvalidCursor("is not valid")
        if cursor_completed != completed:
            raise InvalidCursor("was made for another completed filter")
        return ListPosition(
            created_at=_EPOCH + timedelta(microseconds=micros), task_id=int(task_id)
        )
