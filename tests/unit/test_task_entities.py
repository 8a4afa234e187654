"""``TaskEntities``: each stored version of a task is built once, and never mistaken for another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.postgres.mapper import TaskEntities
from domain.task import Priority

T0 = datetime(2026, 1, 14, 9, 30, 0, 123456, tzinfo=UTC)


def row(**changes: Any) -> dict[str, Any]:
    return {
        "id": 7,
        "user_id": "alice",
        "title": "Buy groceries",
        "description": None,
        "completed": False,
        "completed_at": None,
        "created_at": T0,
        "updated_at": T0,
        "version": 1,
        "due_at": None,
        "priority": 2,
        "tags": ["home"],
        **changes,
    }


def test_a_version_read_again_is_the_entity_built_the_first_time() -> None:
    entities = TaskEntities()
    first = entities.to_domain(row())
    expected = ("Buy groceries", Priority.MEDIUM, ("home",))
    assert (first.title, first.priority, first.tags) == expected
    assert entities.to_domain(row()) is first


def test_a_new_version_is_built_from_its_row() -> None:
    entities = TaskEntities()
    first = entities.to_domain(row())
    later = T0 + timedelta(seconds=1)
    second = entities.to_domain(row(title="Buy bread", version=2, updated_at=later))
    assert (second.title, second.version, second.updated_at) == ("Buy bread", 2, later)
    assert entities.to_domain(row(title="Buy bread", version=2, updated_at=later)) is second
    assert first.title == "Buy groceries"  # the entity handed out before is untouched


def test_a_reused_id_and_version_with_another_time_or_owner_is_another_task() -> None:
    # As after a restore of the database to an earlier point: ids and versions come again.
    entities = TaskEntities()
    entities.to_domain(row())
    bobs = entities.to_domain(row(user_id="bob", title="Bob's"))
    assert (bobs.owner, bobs.title) == ("bob", "Bob's")
    moved_on = T0 + timedelta(days=1)
    later = entities.to_domain(row(user_id="bob", title="Bob's other", updated_at=moved_on))
    assert later.title == "Bob's other"


def test_the_memory_is_bounded() -> None:
    entities = TaskEntities(max_entries=1)
    first = entities.to_domain(row())
    entities.to_domain(row(id=8))
    assert entities.to_domain(row()) is not first
    assert entities.to_domain(row()) == first
