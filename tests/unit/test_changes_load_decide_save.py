"""A change is loaded, decided by the entity and saved on the loaded version (use cases + fakes)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from application.errors import WriteContention
from application.tasks import (
    SAVE_ATTEMPTS,
    CompleteTask,
    CreateTask,
    DeleteTask,
    GetTask,
    RecentTasks,
    UpdateTask,
)
from domain.errors import StaleVersion, TaskNotFound
from domain.task import Task, TaskChanges, UserId
from tests.fakes import FakeClock, FakeTaskRepository

ALICE = UserId("alice")


class RacedRepository(FakeTaskRepository):
    """Before each of the first ``races`` saves, another writer saves the task first."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races
        self.saves: list[tuple[Task, int]] = []

    async def save(self, task: Task, *, expected_version: int) -> Task | None:
        self.saves.append((task, expected_version))
        if self.races > 0:
            self.races -= 1
            current = self.tasks[task.id]
            self.tasks[task.id] = replace(
                current, title=f"by another writer {self.races}", version=current.version + 1
            )
        return await super().save(task, expected_version=expected_version)


async def a_task(repository: FakeTaskRepository, clock: FakeClock) -> Task:
    return (await CreateTask(repository, clock).execute(ALICE, title="first")).task


async def test_completing_a_complete_task_writes_nothing() -> None:
    repository, clock = RacedRepository(races=0), FakeClock()
    task = await a_task(repository, clock)
    done = await CompleteTask(repository, clock, RecentTasks()).execute(ALICE, task.id)
    clock.advance()
    again = await CompleteTask(repository, clock, RecentTasks()).execute(ALICE, task.id)
    assert again == done
    assert len(repository.saves) == 1


async def test_a_save_is_conditional_on_the_version_that_was_loaded() -> None:
    repository, clock = RacedRepository(races=0), FakeClock()
    task = await a_task(repository, clock)
    await UpdateTask(repository, clock, RecentTasks()).execute(
        ALICE, task.id, TaskChanges.create(title="new")
    )
    saved, expected = repository.saves[0]
    assert expected == task.version == 1
    assert (saved.title, saved.version) == ("new", 2)


async def test_a_lost_race_without_if_match_loads_again_and_the_last_write_wins() -> None:
    repository, clock = RacedRepository(races=2), FakeClock()
    task = await a_task(repository, clock)
    edited = await UpdateTask(repository, clock, RecentTasks()).execute(
        ALICE, task.id, TaskChanges.create(description="mine")
    )
    # Two saves missed (versions 1 and 2 were overtaken); the third applied on version 3.
    assert [expected for _, expected in repository.saves] == [1, 2, 3]
    assert (edited.description, edited.version) == ("mine", 4)
    assert edited.title == "by another writer 0"  # the other writer's change is kept
    assert repository.tasks[task.id] == edited


async def test_a_lost_race_under_if_match_is_a_stale_version() -> None:
    repository, clock = RacedRepository(races=1), FakeClock()
    task = await a_task(repository, clock)
    with pytest.raises(StaleVersion) as raised:
        await CompleteTask(repository, clock, RecentTasks()).execute(
            ALICE, task.id, expected_versions=frozenset({1})
        )
    assert raised.value.current_version == 2
    assert repository.tasks[task.id].completed is False


async def test_a_stale_if_match_is_refused_before_anything_is_saved() -> None:
    repository, clock = RacedRepository(races=0), FakeClock()
    task = await a_task(repository, clock)
    with pytest.raises(StaleVersion):
        await UpdateTask(repository, clock, RecentTasks()).execute(
            ALICE, task.id, TaskChanges.create(title="x"), expected_versions=frozenset({7})
        )
    assert repository.saves == []


async def test_endless_contention_gives_up_and_leaves_the_other_writes() -> None:
    repository, clock = RacedRepository(races=SAVE_ATTEMPTS), FakeClock()
    task = await a_task(repository, clock)
    with pytest.raises(WriteContention):
        await UpdateTask(repository, clock, RecentTasks()).execute(
            ALICE, task.id, TaskChanges.create(title="x")
        )
    assert len(repository.saves) == SAVE_ATTEMPTS
    assert repository.tasks[task.id].title != "x"


async def test_a_task_deleted_while_being_changed_is_not_found() -> None:
    repository, clock = RacedRepository(races=0), FakeClock()
    task = await a_task(repository, clock)
    del repository.tasks[task.id]
    with pytest.raises(TaskNotFound):
        await CompleteTask(repository, clock, RecentTasks()).execute(ALICE, task.id)


class CountingRepository(FakeTaskRepository):
    """Counts the loads (the round trips a remembered task saves) and the saves tried."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.saves = 0

    async def get(self, owner: UserId, task_id: int) -> Task | None:
        self.loads += 1
        return await super().get(owner, task_id)

    async def save(self, task: Task, *, expected_version: int) -> Task | None:
        self.saves += 1
        return await super().save(task, expected_version=expected_version)


async def test_a_task_this_process_saved_last_is_changed_again_without_a_load() -> None:
    repository, clock, recent_tasks = CountingRepository(), FakeClock(), RecentTasks()
    task = await a_task(repository, clock)
    update = UpdateTask(repository, clock, recent_tasks)
    await update.execute(ALICE, task.id, TaskChanges.create(title="one"))
    second = await update.execute(ALICE, task.id, TaskChanges.create(title="two"))
    assert repository.loads == 1
    assert (second.title, second.version) == ("two", 3)
    assert repository.tasks[task.id] == second


async def test_a_task_just_read_is_changed_without_another_load() -> None:
    repository, clock, recent_tasks = CountingRepository(), FakeClock(), RecentTasks()
    task = await a_task(repository, clock)
    read = await GetTask(repository, recent_tasks).execute(ALICE, task.id)
    edited = await UpdateTask(repository, clock, recent_tasks).execute(
        ALICE, task.id, TaskChanges.create(title="edited"), expected_versions=frozenset({1})
    )
    assert repository.loads == 1  # the read's, none for the change
    assert (read.version, edited.title, edited.version) == (1, "edited", 2)
    assert repository.tasks[task.id] == edited


async def test_a_read_overtaken_by_another_writer_only_costs_the_change_a_load() -> None:
    repository, clock, recent_tasks = CountingRepository(), FakeClock(), RecentTasks()
    task = await a_task(repository, clock)
    await GetTask(repository, recent_tasks).execute(ALICE, task.id)
    # Another writer changes it after the read: the guess (version 1) is out of date.
    repository.tasks[task.id] = replace(task, description="theirs", version=2)
    with pytest.raises(StaleVersion):
        await UpdateTask(repository, clock, recent_tasks).execute(
            ALICE, task.id, TaskChanges.create(title="mine"), expected_versions=frozenset({1})
        )
    edited = await UpdateTask(repository, clock, recent_tasks).execute(
        ALICE, task.id, TaskChanges.create(title="mine")
    )
    assert (edited.title, edited.description, edited.version) == ("mine", "theirs", 3)
    assert repository.tasks[task.id] == edited
    # The read, then one fresh load after the stale guess missed; the second change starts from
    # that load, not from the stale read again.
    assert repository.loads == 2
    assert repository.saves == 2  # the missed save and the second change's


async def test_a_task_remembered_for_its_owner_is_never_a_guess_for_another_user() -> None:
    repository, clock, recent_tasks = CountingRepository(), FakeClock(), RecentTasks()
    task = await a_task(repository, clock)
    await GetTask(repository, recent_tasks).execute(ALICE, task.id)
    with pytest.raises(TaskNotFound):
        await UpdateTask(repository, clock, recent_tasks).execute(
            UserId("bob"), task.id, TaskChanges.create(title="bob's now")
        )
    assert (repository.saves, repository.tasks[task.id]) == (0, task)
    assert recent_tasks.get(ALICE, task.id) == task


async def test_a_task_deleted_by_another_replica_is_forgotten_when_a_change_finds_it_gone() -> None:
    repository, clock, recent_tasks = CountingRepository(), FakeClock(), RecentTasks()
    task = await a_task(repository, clock)
    await GetTask(repository, recent_tasks).execute(ALICE, task.id)
    del repository.tasks[task.id]  # another replica deleted it
    with pytest.raises(TaskNotFound):
        await CompleteTask(repository, clock, recent_tasks).execute(ALICE, task.id)
    assert recent_tasks.get(ALICE, task.id) is None


async def test_a_guess_overtaken_by_another_replica_misses_and_the_change_starts_again() -> None:
    repository, clock, recent_tasks = CountingRepository(), FakeClock(), RecentTasks()
    task = await a_task(repository, clock)
    update = UpdateTask(repository, clock, recent_tasks)
    await update.execute(ALICE, task.id, TaskChanges.create(title="mine"))
    # Another replica writes: this process's memory of the task is now out of date.
    current = repository.tasks[task.id]
    repository.tasks[task.id] = replace(current, description="theirs", version=current.version + 1)
    edited = await update.execute(ALICE, task.id, TaskChanges.create(completed=True))
    assert (edited.title, edited.description, edited.completed, edited.version) == (
        "mine",
        "theirs",
        True,
        4,
    )
    assert repository.loads == 2


async def test_a_412_or_nothing_to_change_is_never_decided_on_a_guess_alone() -> None:
    repository, clock, recent_tasks = CountingRepository(), FakeClock(), RecentTasks()
    task = await a_task(repository, clock)
    complete = CompleteTask(repository, clock, recent_tasks)
    done = await complete.execute(ALICE, task.id)
    # Another replica reopens it (version 3); this process still remembers it complete (2).
    repository.tasks[task.id] = replace(done, completed=False, completed_at=None, version=3)
    again = await complete.execute(ALICE, task.id, expected_versions=frozenset({3}))
    assert (again.completed, again.version) == (True, 4)
    assert repository.tasks[task.id] == again


async def test_recent_tasks_are_bounded_and_forgets_the_oldest_first() -> None:
    recent_tasks, clock = RecentTasks(max_entries=2), FakeClock()
    repository = FakeTaskRepository()
    tasks = [await a_task(repository, clock) for _ in range(3)]
    for task in tasks:
        recent_tasks.remember(task)
    assert recent_tasks.get(ALICE, tasks[0].id) is None
    assert recent_tasks.get(ALICE, tasks[2].id) == tasks[2]


async def test_recent_tasks_are_bounded_in_text_too() -> None:
    recent_tasks, clock = RecentTasks(max_characters=12_000), FakeClock()
    repository = FakeTaskRepository()
    tasks = [replace(await a_task(repository, clock), description="d" * 5000) for _ in range(3)]
    for task in tasks:
        recent_tasks.remember(task)
    # 3 x 5005 characters is over the bound: the oldest went.
    assert recent_tasks.get(ALICE, tasks[0].id) is None
    assert recent_tasks.get(ALICE, tasks[1].id) == tasks[1]
    assert recent_tasks.get(ALICE, tasks[2].id) == tasks[2]
    recent_tasks.remember(replace(tasks[1], description=None, version=2))
    recent_tasks.remember(tasks[0])
    assert recent_tasks.get(ALICE, tasks[2].id) == tasks[2]  # room again: nothing else went


async def test_nothing_to_change_on_a_guess_is_confirmed_by_a_fresh_load() -> None:
    repository, clock, recent_tasks = CountingRepository(), FakeClock(), RecentTasks()
    task = await a_task(repository, clock)
    complete = CompleteTask(repository, clock, recent_tasks)
    done = await complete.execute(ALICE, task.id)
    # Another replica reopens it; this process still remembers it complete.
    repository.tasks[task.id] = replace(done, completed=False, completed_at=None, version=3)
    clock.advance()
    again = await complete.execute(ALICE, task.id)
    assert (again.completed, again.version, again.completed_at) == (True, 4, clock.now())
    assert repository.tasks[task.id] == again


async def test_a_deleted_task_is_forgotten() -> None:
    repository, clock, recent_tasks = FakeTaskRepository(), FakeClock(), RecentTasks()
    task = await a_task(repository, clock)
    saved = await UpdateTask(repository, clock, recent_tasks).execute(
        ALICE, task.id, TaskChanges.create(title="secret")
    )
    assert recent_tasks.get(ALICE, task.id) == saved
    await DeleteTask(repository, recent_tasks).execute(ALICE, task.id)
    assert recent_tasks.get(ALICE, task.id) is None
