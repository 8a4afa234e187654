"""The Task entity, its owner, and the changes a user can make to it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final, NewType

from domain.errors import AccessDenied, InvalidTask
from domain.text import clean_description, clean_title

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

    @classmethod
    def create(cls, *, owner: UserId, title: str, description: str | None = None) -> NewTask:
        """Validate title and description and return the draft; raises ``InvalidTask``."""
        return cls(
            owner=owner, title=clean_title(title), description=clean_description(description)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskChanges:
    """A validated set of edits (a PUT): each field is a new value or ``UNSET`` to keep the old."""

    title: str | _Unset = UNSET
    description: str | _Unset | None = UNSET
    completed: bool | _Unset = UNSET

    @classmethod
    def create(
        cls,
        *,
        title: str | _Unset = UNSET,
        description: str | _Unset | None = UNSET,
        completed: bool | _Unset = UNSET,
    ) -> TaskChanges:
        """Validate the given fields; raises ``InvalidTask`` if one is invalid or none is given."""
        if title is UNSET and description is UNSET and completed is UNSET:
            raise InvalidTask("body", "must set at least one of title, description, completed")
        return cls(
            title=title if title is UNSET else clean_title(title),
            description=description if description is UNSET else clean_description(description),
            completed=completed,
        )


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
            completed=completed,
            completed_at=completed_at,
            updated_at=at,
            version=self.version + 1,
        )
