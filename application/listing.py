"""What a listing asks for and gets back.

Which tasks (``TaskFilter``), in which order (``SortOrder``), from where (``ListPosition``), and
the page (``TaskPage``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from domain.errors import InvalidTask
from domain.task import Priority, Task, clean_due_at
from domain.text import clean_tag, refuse_control_characters

QUERY_MAX_LENGTH: Final = 200


class SortField(enum.StrEnum):
    """What a listing can be ordered by; ties are always broken by id."""

    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    DUE_AT = "due_at"
    PRIORITY = "priority"
    TITLE = "title"


SortValue = datetime | Priority | str | None
"""A task's value for a sort field (``None``: no due date)."""


@dataclass(frozen=True, slots=True)
class SortOrder:
    """A field and a direction, ascending unless ``descending``.

    Tasks without a due date come last in both directions of ``due_at``; ``title`` compares
    case-insensitively (as the database lower-cases).
    """

    field: SortField = SortField.CREATED_AT
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> SortOrder:
        """``created_at``, ``-priority``, ...; raises ``InvalidTask`` for anything else."""
        name = text.removeprefix("-")
        try:
            return cls(SortField(name), descending=text.startswith("-"))
        except ValueError:
            choices = ", ".join(SortField)
            raise InvalidTask(
                "sort", f"must be one of {choices}, each optionally preceded by -"
            ) from None

    def __str__(self) -> str:
        return f"-{self.field}" if self.descending else str(self.field)

    def value_of(self, task: Task) -> SortValue:
        """The task's value for this order's field."""
        match self.field:
            case SortField.CREATED_AT:
                return task.created_at
            case SortField.UPDATED_AT:
                return task.updated_at
            case SortField.DUE_AT:
                return task.due_at
            case SortField.PRIORITY:
                return task.priority
            case SortField.TITLE:
                return task.title


@dataclass(frozen=True, slots=True)
class ListPosition:
    """Where a page ended (keyset): the last task's value for the sort field, and its id."""

    value: SortValue
    task_id: int

    @classmethod
    def after(cls, task: Task, order: SortOrder) -> ListPosition:
        """The position just past ``task`` in ``order``."""
        return cls(order.value_of(task), task.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFilter:
    """Which tasks a listing shows: each criterion given must hold (a task matches all).

    ``tags``: the task carries every one; ``due_before``/``due_after``: due strictly before / at
    or after (never a task without a due date); ``words``: each occurs, case-insensitively, in
    the title or the description.
    """

    completed: bool | None = None
    priorities: frozenset[Priority] = frozenset()
    tags: tuple[str, ...] = ()
    due_before: datetime | None = None
    due_after: datetime | None = None
    words: tuple[str, ...] = ()

    @classmethod
    def create(
        cls,
        *,
        completed: bool | None = None,
        priorities: Iterable[Priority] = (),
        tags: Iterable[str] = (),
        due_before: datetime | None = None,
        due_after: datetime | None = None,
        q: str | None = None,
    ) -> TaskFilter:
        """Validate the criteria; raises ``InvalidTask`` naming the parameter.

        Tags follow the tag rule, dates need an offset, ``q`` is 1-200 characters holding a word.
        """
        words: tuple[str, ...] = ()
        if q is not None:
            if not 1 <= len(q) <= QUERY_MAX_LENGTH:
                raise InvalidTask("q", f"must be 1-{QUERY_MAX_LENGTH} characters")
            words = tuple(dict.fromkeys(refuse_control_characters(w, "q") for w in q.split()))
            if not words:
                raise InvalidTask("q", "must contain a word")
        return cls(
            completed=completed,
            priorities=frozenset(priorities),
            tags=tuple(sorted({clean_tag(tag, field="tag") for tag in tags})),
            due_before=clean_due_at(due_before, field="due_before"),
            due_after=clean_due_at(due_after, field="due_after"),
            words=words,
        )


EVERY_TASK: Final = TaskFilter()
OLDEST_FIRST: Final = SortOrder()


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of an owner's tasks.

    ``total`` counts all tasks matching the filter; ``has_more`` says whether more follow.
    """

    tasks: Sequence[Task]
    total: int
    has_more: bool

    def after_last(self, order: SortOrder) -> ListPosition | None:
        """Where the next page starts, if another follows."""
        if not self.has_more or not self.tasks:
            return None
        return ListPosition.after(self.tasks[-1], order)


@dataclass(frozen=True, slots=True)
class TagCount:
    """A tag, and how many of the owner's tasks carry it."""

    tag: str
    count: int
