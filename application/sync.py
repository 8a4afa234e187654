"""The change feed: what changed in a user's tasks since a client last asked.

Every change (a task written, a task deleted) takes a place in its owner's feed, and a user's
changes commit in the order of their places (the repository guarantees it). So a reader that has
passed a place has seen every change of that user up to it, whatever writers run concurrently,
and a ``FeedPosition`` is all a client needs to keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from application.errors import ApplicationError
from domain.task import Task

SYNC_TOKEN_LIFETIME: Final = timedelta(days=30)
"""How long a sync token stays good: it is answered 410 after that."""
TOMBSTONE_LIFETIME: Final = SYNC_TOKEN_LIFETIME + timedelta(days=1)
"""How long a deletion is remembered: a token's lifetime, plus a day for a write that committed
well after the time it carries (a transaction lasts seconds) and for clocks that disagree."""

DEFAULT_CHANGES_PAGE: Final = 100
MAX_CHANGES_PAGE: Final = 1000
LAST_ID: Final = 2**63 - 1


class SyncTokenExpired(ApplicationError):
    """The position is older than the deletions remembered, or than this feed: start over.

    (Older than ``SYNC_TOKEN_LIFETIME``, from before the feed was created again or restarted after
    a restore, or from before an erasure of the owner's data.)
    """


@dataclass(frozen=True, slots=True)
class FeedPosition:
    """Where a client stands in its owner's feed.

    ``seq`` and ``task_id`` are the last change it has (ties at ``seq`` 0, tasks stored before the
    feed existed, go by id). ``floor`` is the place below which deletions concern tasks the
    client never held: past the end of its first sync, it is ``seq`` or more. ``as_of`` is a time
    no later than the read it came from: any deletion the client has not seen happened after it,
    so is remembered while ``as_of`` is less than ``SYNC_TOKEN_LIFETIME`` old.
    """

    seq: int
    task_id: int
    floor: int
    as_of: datetime


@dataclass(frozen=True, slots=True)
class Upsert:
    """A task created or changed, in its latest state."""

    task: Task
    seq: int


@dataclass(frozen=True, slots=True)
class Deletion:
    """A task deleted."""

    task_id: int
    deleted_at: datetime
    seq: int


Change = Upsert | Deletion


def change_id(change: Change) -> int:
    """The id of the task a change is about."""
    return change.task.id if isinstance(change, Upsert) else change.task_id


def position_after(change: Change, floor: int, as_of: datetime) -> FeedPosition:
    """Where a client stands once it has ``change`` (read at ``as_of``, above ``floor``)."""
    return FeedPosition(change.seq, change_id(change), max(floor, change.seq), as_of)


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """What the repository read, in one snapshot.

    ``latest`` is the owner's last place in the feed that the snapshot saw (0 when none);
    ``horizon`` the place the feed started after (a position below it predates this feed);
    ``erased`` the place, after the position read from, where the owner's data was erased
    (``taskapi delete-user``), if it was: the deletions before it are gone with it.
    """

    changes: Sequence[Change]
    has_more: bool
    latest: int
    horizon: int
    erased: int | None = None


@dataclass(frozen=True, slots=True)
class ChangePage:
    """A page of changes in feed order, and where the client stands after each."""

    changes: Sequence[Change]
    has_more: bool
    floor: int
    as_of: datetime
    end: FeedPosition

    def position_after(self, shown: int) -> FeedPosition:
        """Where a client stands once it has the first ``shown`` changes (all: ``end``)."""
        if not 0 < shown < len(self.changes):
            return self.end
        return position_after(self.changes[shown - 1], self.floor, self.as_of)
