"""Every error the domain raises, in one tree.

``DomainError``
    Base of all rule violations; never raised itself.
``InvalidTask``
    A value breaks a task rule (title, description, owner id). ``field`` names the input field
    and ``message`` says what is wrong in words fit for an API client.
``AccessDenied``
    Someone acts on a user's tasks who is not that user. Nothing may be read or written.
``TaskNotFound``
    The owner has no task with that id: it does not exist, is someone else's, or the id is not a
    valid task id at all. The three are deliberately indistinguishable.
``TaskLimitReached``
    The owner already holds as many tasks as one user may; nothing was created.
``StaleVersion``
    A write was made conditional on a version of the task that is no longer current.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every rule violation in the domain."""


class InvalidTask(DomainError):
    """A task field breaks its rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


class AccessDenied(DomainError):
    """The acting user is not the owner of the tasks addressed."""


class TaskNotFound(DomainError):
    """No task with this id belongs to this owner."""

    def __init__(self, task_id: object) -> None:
        super().__init__("task not found")
        self.task_id = task_id


class TaskLimitReached(DomainError):
    """The owner holds as many tasks as a user may; a new one is refused."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a user holds at most {limit} tasks")
        self.limit = limit


class StaleVersion(DomainError):
    """The task's current version is not the one the write was conditional on."""

    def __init__(self, current_version: int) -> None:
        super().__init__("task was modified by another request")
        self.current_version = current_version
