"""``Recent``: a bounded memory of the values put last, the oldest forgotten first."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from domain.task import Task

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most ``max_entries`` values of at most ``max_size`` in all (as ``size_of`` counts).

    Past either bound the values put longest ago go first (a lookup does not make a value
    newer); a value larger than ``max_size`` by itself is not kept.
    """

    def __init__(
        self, size_of: Callable[[V], int], max_entries: int = 10_000, max_size: int = 2_000_000
    ) -> None:
        self._values: OrderedDict[K, V] = OrderedDict()
        self._size_of = size_of
        self._max_entries = max_entries
        self._max_size = max_size
        self._size = 0

    def get(self, key: K) -> V | None:
        """The value kept under ``key``, if it is still remembered."""
        return self._values.get(key)

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` under ``key`` as the newest entry, forgetting the oldest past a bound."""
        self.discard(key)
        size = self._size_of(value)
        if size > self._max_size:
            return
        self._values[key] = value
        self._size += size
        while len(self._values) > self._max_entries or self._size > self._max_size:
            _, gone = self._values.popitem(last=False)
            self._size -= self._size_of(gone)

    def discard(self, key: K) -> None:
        """Forget what is kept under ``key``, if anything."""
        gone = self._values.pop(key, None)
        if gone is not None:
            self._size -= self._size_of(gone)

    def __len__(self) -> int:
        return len(self._values)


def task_text_size(task: Task) -> int:
    """How much text a task holds: what bounds a memory of tasks besides their number."""
    return len(task.title) + len(task.description or "") + sum(map(len, task.tags))
