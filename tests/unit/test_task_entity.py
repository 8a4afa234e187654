from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.errors import AccessDenied, InvalidTask
from domain.task import (
    UNSET,
    NewTask,
    Priority,
    Task,
    TaskChanges,
    UserId,
    ensure_owner,
)
from domain.text import is_valid_user_id

T0 = datetime(2026, 1, 14, 9, 30, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
T2 = T0 + timedelta(minutes=10)


def a_task(**fields: object) -> Task:
    values: dict[str, object] = {
        "id": 1,
        "owner": UserId("alice"),
        "title": "Buy groceries",
        "description": None,
        "completed": False,
        "completed_at": None,
        "created_at": T0,
        "updated_at": T0,
        "version": 1,
        **fields,
    }
    return Task(**values)  # type: ignore[arg-type]  # test builder with known field names


def test_task_is_immutable() -> None:
    task = a_task()
    with pytest.raises(AttributeError):
        task.title = "changed"  # type: ignore[misc]  # the point of the test


def test_complete_sets_completed_at_and_bumps_version() -> None:
    done = a_task().complete(at=T1)
    assert (done.completed, done.completed_at, done.updated_at, done.version) == (True, T1, T1, 2)


def test_complete_is_idempotent() -> None:
    done = a_task().complete(at=T1)
    again = done.complete(at=T2)
    assert again == done


def test_edit_reopening_a_complete_task_clears_completed_at() -> None:
    reopened = a_task().complete(at=T1).edit(TaskChanges.create(completed=False), at=T2)
    assert (reopened.completed, reopened.completed_at, reopened.version) == (False, None, 3)
    assert reopened.updated_at == T2


def test_edit_trims_the_title_and_bumps() -> None:
    renamed = a_task().edit(TaskChanges.create(title="  Buy almond milk \n"), at=T1)
    assert (renamed.title, renamed.version, renamed.updated_at) == ("Buy almond milk", 2, T1)


def test_changes_refuse_an_empty_title() -> None:
    with pytest.raises(InvalidTask) as raised:
        TaskChanges.create(title="   ")
    assert raised.value.field == "title"


def test_edit_sets_and_clears_the_description() -> None:
    described = a_task().edit(TaskChanges.create(description="milk\n\teggs"), at=T1)
    assert described.description == "milk\n\teggs"
    cleared = described.edit(TaskChanges.create(description=None), at=T2)
    assert cleared.description is None


def test_edit_applies_all_fields_as_one_version() -> None:
    changes = TaskChanges.create(title="New", description="d", completed=True)
    edited = a_task().edit(changes, at=T1)
    assert (edited.title, edited.description, edited.completed) == ("New", "d", True)
    assert (edited.completed_at, edited.version, edited.updated_at) == (T1, 2, T1)


def test_edit_keeps_fields_left_out() -> None:
    task = a_task(description="keep me")
    edited = task.edit(TaskChanges.create(title="Other"), at=T1)
    assert edited.description == "keep me"
    assert edited.completed is False


def test_edit_completing_a_complete_task_keeps_completed_at() -> None:
    done = a_task().complete(at=T1)
    edited = done.edit(TaskChanges.create(completed=True), at=T2)
    assert edited.completed_at == T1
    assert edited.version == 3


def test_edit_reopening_clears_completed_at() -> None:
    edited = a_task().complete(at=T1).edit(TaskChanges.create(completed=False), at=T2)
    assert (edited.completed, edited.completed_at) == (False, None)


def test_changes_need_at_least_one_field() -> None:
    with pytest.raises(InvalidTask):
        TaskChanges.create()


def test_changes_can_set_description_to_none() -> None:
    changes = TaskChanges.create(description=None)
    assert changes.description is None
    assert changes.title is UNSET


def test_new_task_validates() -> None:
    draft = NewTask.create(owner=UserId("alice"), title="  x  ", description=None)
    assert draft.title == "x"
    with pytest.raises(InvalidTask):
        NewTask.create(owner=UserId("alice"), title="")


def test_owner_rule_allows_only_the_same_user() -> None:
    assert ensure_owner(UserId("alice"), "alice") == "alice"
    with pytest.raises(AccessDenied):
        ensure_owner(UserId("alice"), "bob")
    with pytest.raises(AccessDenied):
        ensure_owner(UserId("alice"), "Alice")


@pytest.mark.parametrize("raw", ["", " alice", "al\x00ice", "a" * 256, "bob\n"])
def test_user_id_rule_refuses_unusable_ids(raw: str) -> None:
    assert not is_valid_user_id(raw)


def test_user_id_rule_accepts_unicode_and_uuids() -> None:
    assert is_valid_user_id("zoë")
    assert is_valid_user_id("0f8fad5b-d9cb-469f-a165-70867728950e")


def test_a_new_task_has_no_due_date_no_priority_and_no_tags() -> None:
    draft = NewTask.create(owner=UserId("alice"), title="t")
    assert (draft.due_at, draft.priority, draft.tags) == (None, Priority.NONE, ())


def test_tags_are_a_normalised_sorted_set() -> None:
    draft = NewTask.create(owner=UserId("alice"), title="t", tags=[" Work", "home ", "WORK", "Ä"])
    assert draft.tags == ("home", "work", "ä")


def test_a_tag_spelled_with_a_combining_accent_is_the_same_tag() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    draft = NewTask.create(owner=UserId("alice"), title="t", tags=[decomposed, composed.upper()])
    assert draft.tags == (composed,)


@pytest.mark.parametrize(
    "tags",
    [
        [""],
        [" "],
        ["x" * 51],
        ["a\tb"],
        ["\u200b"],
        ["\u202eevil"],
        ["one\u2028two"],
        [f"t{n}" for n in range(21)],
    ],
)
def test_tags_that_break_the_rule_are_refused(tags: list[str]) -> None:
    with pytest.raises(InvalidTask) as refused:
        NewTask.create(owner=UserId("alice"), title="t", tags=tags)
    assert refused.value.field == "tags"


def test_a_due_date_needs_an_offset_and_is_kept_in_utc() -> None:
    plus_one = timezone(timedelta(hours=1))
    draft = NewTask.create(
        owner=UserId("alice"), title="t", due_at=datetime(2026, 12, 24, 17, tzinfo=plus_one)
    )
    assert draft.due_at == datetime(2026, 12, 24, 16, tzinfo=UTC)
    assert draft.due_at.tzinfo is UTC
    with pytest.raises(InvalidTask) as refused:
        NewTask.create(owner=UserId("alice"), title="t", due_at=datetime(2026, 12, 24))
    assert refused.value.field == "due_at"


def test_priorities_are_ordered() -> None:
    assert [p.rank for p in (Priority.NONE, Priority.LOW, Priority.MEDIUM, Priority.HIGH)] == [
        0,
        1,
        2,
        3,
    ]
    assert all(Priority.of_rank(p.rank) is p for p in Priority)


def test_editing_the_new_fields_is_one_version_step_each_and_keeps_the_rest() -> None:
    task = a_task(tags=("a",), priority=Priority.LOW)
    edited = task.edit(TaskChanges.create(priority=Priority.HIGH, tags=["B"]), at=T1)
    assert (edited.priority, edited.tags, edited.version, edited.updated_at) == (
        Priority.HIGH,
        ("b",),
        2,
        T1,
    )
    assert (edited.title, edited.due_at) == (task.title, task.due_at)
    due = edited.edit(TaskChanges.create(due_at=T2), at=T2)
    assert (due.due_at, due.version) == (T2, 3)
    cleared = due.edit(TaskChanges.create(due_at=None), at=T2)
    assert (cleared.due_at, cleared.version, cleared.tags) == (None, 4, ("b",))


def test_an_edit_must_set_something() -> None:
    with pytest.raises(InvalidTask) as refused:
        TaskChanges.create()
    assert "due_at, priority, tags" in refused.value.message
