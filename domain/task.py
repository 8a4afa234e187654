"""The Task entity, its owner, and the changes a user can make to it."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, NewType

from domain.errors import AccessDenied, InvalidTask
from domain.text import clean_description, clean_tags, clean_title

UserId = NewType("UserId", str)
"""The id of a task's owner, as the authentication system issues it (a JWT subject)."""

TASK_ID_MAX: Final = 2**63 - 1
"""Task ids are positive PostgreSQL bigints."""


def ensure_owner(acting: UserId, addressed: str) -> UserId:
    """The ownership rule: a user may only address their own tasks.

    ``addressed`` is the user named by the request (the path); it must be exactly the acting user.
    Raises ``AccessDenied`` otherwise, before anything is read or written.
    """
    if addressed != acting:
        raise AccessDenied()
    return acting


class Priority(enum.StrEnum):
    """How much a task matters; ordered ``none`` < ``low`` < ``medium`` < ``high``."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """The position in the order above, 0-3 (what a sort by priority compares)."""
        return _PRIORITY_ORDER.index(self)

    @classmethod
    def of_rank(cls, rank: int) -> Priority:
        """The priority at ``rank`` in the order."""
        return _PRIORITY_ORDER[rank]


_PRIORITY_ORDER: Final = tuple(Priority)


def clean_due_at(raw: datetime | None, *, field: str = "due_at") -> datetime | None:
    """A due date must name an instant (carry an offset); it is kept in UTC. ``None``: not due."""
    if raw is None:
        return None
    if raw.tzinfo is None or raw.utcoffset() is None:
        raise InvalidTask(field, "must have a time zone offset")
    try:
        return raw.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise InvalidTask(field, "is out of range") from None


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET
"""Marks a field of ``TaskChanges`` that the request left out (distinct from ``None``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTask:
    """A validated task that is not stored yet (the store assigns its id)."""

    owner: UserId
    title: str
    description: str | None
    due_at: datetime | None = None
    priority: Priority = Priority.NONE
    tags: tuple[str, ...] = ()

    @classmethod
    def create(
        cls,
        *,
        owner: UserId,
        title: str,
        description: str | None = None,
        due_at: datetime | None = None,
        priority: Priority = Priority.NONE,
        tags: Iterable[str] = (),
    ) -> NewTask:
        """Validate every field and return the draft; raises ``InvalidTask``."""
        return cls(
            owner=owner,
            title=clean_title(title),
            description=clean_description(description),
            due_at=clean_due_at(due_at),
            priority=priority,
            tags=clean_tags(tags),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskChanges:
    """A validated set of edits (a PUT): each field is a new value or ``UNSET`` to keep the old."""

    title: str | _Unset = UNSET
    description: str | _Unset | None = UNSET
    completed: bool | _Unset = UNSET
    due_at: datetime | _Unset | None = UNSET
    priority: Priority | _Unset = UNSET
    tags: tuple[str, ...] | _Unset = UNSET

    @classmethod
    def create(
        cls,
        *,
        title: str | _Unset = UNSET,
        description: str | _Unset | None = UNSET,
        completed: bool | _Unset = UNSET,
        due_at: datetime | _Unset | None = UNSET,
        priority: Priority | _Unset = UNSET,
        tags: Iterable[str] | _Unset = UNSET,
    ) -> TaskChanges:
        """Validate the given fields; raises ``InvalidTask`` if one is invalid or none is given.

        ``tags`` replaces the whole set; ``due_at=None`` clears the due date.
        """
        given = (title, description, completed, due_at, priority, tags)
        if all(value is UNSET for value in given):
            raise InvalidTask("body", f"must set at least one of {', '.join(CHANGEABLE)}")
        return cls(
            title=title if title is UNSET else clean_title(title),
            description=description if description is UNSET else clean_description(description),
            completed=completed,
            due_at=due_at if due_at is UNSET else clean_due_at(due_at),
            priority=priority,
            tags=tags if tags is UNSET else clean_tags(tags),
        )


CHANGEABLE: Final = ("title", "description", "completed", "due_at", "priority", "tags")
"""The fields an edit may set."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """A user's task. Immutable: every change returns a new ``Task``.

    ``version`` starts at 1 and grows by one with each effective change, together with
    ``updated_at``; ``completed_at`` is set when the task becomes complete and cleared when it is
    reopened.
    """

    id: int
    owner: UserId
    title: str
    description: str | None
    completed: bool
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    due_at: datetime | None = None
    priority: Priority = Priority.NONE
    tags: tuple[str, ...] = ()

    def complete(self, *, at: datetime) -> Task:
        """Mark complete. Idempotent: an already complete task is returned unchanged."""
        if self.completed:
            return self
        return replace(
            self, completed=True, completed_at=at, updated_at=at, version=self.version + 1
        )

    def edit(self, changes: TaskChanges, *, at: datetime) -> Task:
        """Apply a whole edit as one change: one version step, whatever it touches.

        Setting ``completed`` to true on a complete task keeps its ``completed_at``; setting it to
        false clears it.
        """
        title = self.title if changes.title is UNSET else changes.title
        description = self.description if changes.description is UNSET else changes.description
        completed = self.completed if changes.completed is UNSET else changes.completed
        if not completed:
            completed_at = None
        elif self.completed:
            completed_at = self.completed_at
        else:
            completed_at = at
        return replace(
            self,
            title=title,
            description=description,
            due_at=self.due_at if changes.due_at is UNSET else changes.due_at,
            priority=self.priority if changes.priority is UNSET else changes.priority,
            tags=self.tags if changes.tags is UNSET else changes.tags,
            completed=completed,
            completed_at=completed_at,
            updated_at=at,
            version=self.version + 1,
        )
