from __future__ import annotations

import pytest

from application.auth import MAX_TOKEN_LENGTH, Authenticate, authorise_owner
from application.errors import AuthenticationFailed, IdempotencyConflict
from application.listing import OLDEST_FIRST, TaskFilter
from application.ports import Principal
from application.tasks import (
    CompleteTask,
    CreateTask,
    DeleteTask,
    GetTask,
    ListTasks,
    RecentTasks,
    UpdateTask,
)
from domain.errors import AccessDenied, InvalidTask, StaleVersion, TaskNotFound
from domain.task import Task, TaskChanges, UserId
from tests.fakes import FakeClock, FakeTaskRepository, FakeTokenVerifier

ALICE = UserId("alice")
BOB = UserId("bob")


@pytest.fixture
def repository() -> FakeTaskRepository:
    return FakeTaskRepository()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_create_stores_an_incomplete_task_for_its_owner(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(ALICE, title=" Buy groceries ")).task
    assert (task.owner, task.title, task.completed, task.version) == (
        ALICE,
        "Buy groceries",
        False,
        1,
    )
    assert task.created_at == task.updated_at == clock.now()
    assert repository.tasks == {task.id: task}


async def test_create_refuses_an_empty_title_and_stores_nothing(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    with pytest.raises(InvalidTask):
        await CreateTask(repository, clock).execute(ALICE, title="  ")
    assert repository.tasks == {}


async def test_list_returns_only_the_owners_tasks_in_creation_order(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    create = CreateTask(repository, clock)
    for title in ("a", "b", "c"):
        clock.advance()
        await create.execute(ALICE, title=title)
        await create.execute(BOB, title=f"bob {title}")
    listed = (await ListTasks(repository).execute(ALICE)).tasks
    assert [task.title for task in listed] == ["a", "b", "c"]


async def test_list_filters_and_limits(repository: FakeTaskRepository, clock: FakeClock) -> None:
    create = CreateTask(repository, clock)
    ids = [((await create.execute(ALICE, title=str(n))).task).id for n in range(5)]
    await CompleteTask(repository, clock, RecentTasks()).execute(ALICE, ids[1])
    list_tasks = ListTasks(repository)
    assert [
        t.id for t in (await list_tasks.execute(ALICE, where=TaskFilter(completed=True))).tasks
    ] == [ids[1]]
    assert len((await list_tasks.execute(ALICE, where=TaskFilter(completed=False))).tasks) == 4
    assert [t.id for t in (await list_tasks.execute(ALICE, limit=2)).tasks] == ids[:2]


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_list_refuses_a_limit_out_of_range(
    repository: FakeTaskRepository, limit: int
) -> None:
    with pytest.raises(InvalidTask):
        await ListTasks(repository).execute(ALICE, limit=limit)


async def test_get_hides_other_users_tasks(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(BOB, title="bob's")).task
    with pytest.raises(TaskNotFound):
        await GetTask(repository, RecentTasks()).execute(ALICE, task.id)
    assert await GetTask(repository, RecentTasks()).execute(BOB, task.id) == task


async def test_update_applies_changes_and_bumps_version(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(ALICE, title="Buy milk")).task
    clock.advance()
    updated = await UpdateTask(repository, clock, RecentTasks()).execute(
        ALICE, task.id, TaskChanges.create(title="Buy almond milk")
    )
    assert (updated.title, updated.version, updated.updated_at) == (
        "Buy almond milk",
        2,
        clock.now(),
    )
    assert updated.created_at == task.created_at


async def test_update_of_a_missing_or_foreign_task_is_not_found(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(BOB, title="bob's")).task
    update = UpdateTask(repository, clock, RecentTasks())
    with pytest.raises(TaskNotFound):
        await update.execute(ALICE, task.id, TaskChanges.create(title="mine now"))
    with pytest.raises(TaskNotFound):
        await update.execute(ALICE, 999, TaskChanges.create(title="x"))
    assert repository.tasks[task.id].title == "bob's"


async def test_complete_twice_changes_nothing_the_second_time(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(ALICE, title="t")).task
    complete = CompleteTask(repository, clock, RecentTasks())
    clock.advance()
    first = await complete.execute(ALICE, task.id)
    clock.advance()
    second = await complete.execute(ALICE, task.id)
    assert first == second
    assert first.version == 2


async def test_complete_of_a_foreign_task_is_not_found(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(BOB, title="t")).task
    with pytest.raises(TaskNotFound):
        await CompleteTask(repository, clock, RecentTasks()).execute(ALICE, task.id)
    assert repository.tasks[task.id].completed is False


async def test_delete_removes_and_then_is_not_found(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(ALICE, title="t")).task
    delete = DeleteTask(repository, RecentTasks())
    await delete.execute(ALICE, task.id)
    assert repository.tasks == {}
    with pytest.raises(TaskNotFound):
        await delete.execute(ALICE, task.id)


async def test_delete_of_a_foreign_task_is_not_found_and_keeps_it(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(BOB, title="t")).task
    with pytest.raises(TaskNotFound):
        await DeleteTask(repository, RecentTasks()).execute(ALICE, task.id)
    assert task.id in repository.tasks


async def test_authenticate_refuses_missing_and_oversized_tokens() -> None:
    verifier = FakeTokenVerifier()
    authenticate = Authenticate(verifier)
    with pytest.raises(AuthenticationFailed):
        await authenticate.execute(None)
    with pytest.raises(AuthenticationFailed):
        await authenticate.execute("valid:" + "a" * MAX_TOKEN_LENGTH)
    assert verifier.seen == []  # neither reached the verifier
    assert await authenticate.execute("valid:alice") == Principal(ALICE)


def test_authorise_owner() -> None:
    assert authorise_owner(Principal(ALICE), "alice") == ALICE
    with pytest.raises(AccessDenied):
        authorise_owner(Principal(ALICE), "bob")


async def test_create_with_a_key_replays_and_refuses_another_body(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    create = CreateTask(repository, clock)
    first = await create.execute(ALICE, title=" t ", idempotency_key="k")
    again = await create.execute(ALICE, title=" t ", idempotency_key="k")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.task == first.task
    with pytest.raises(IdempotencyConflict):
        await create.execute(ALICE, title="t", idempotency_key="k")  # trimmed alike, sent unlike
    assert len(repository.tasks) == 1


async def test_list_pages_by_position(repository: FakeTaskRepository, clock: FakeClock) -> None:
    create = CreateTask(repository, clock)
    for n in range(5):
        clock.advance()
        await create.execute(ALICE, title=str(n))
    list_tasks = ListTasks(repository)
    first = await list_tasks.execute(ALICE, limit=2)
    assert (first.total, first.has_more) == (5, True)
    second = await list_tasks.execute(ALICE, limit=2, after=first.after_last(OLDEST_FIRST))
    assert [t.title for t in second.tasks] == ["2", "3"]
    last = await list_tasks.execute(ALICE, limit=2, after=second.after_last(OLDEST_FIRST))
    assert ([t.title for t in last.tasks], last.has_more, last.after_last(OLDEST_FIRST)) == (
        ["4"],
        False,
        None,
    )


async def test_writes_honour_expected_versions(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(ALICE, title="t")).task
    with pytest.raises(StaleVersion):
        await UpdateTask(repository, clock, RecentTasks()).execute(
            ALICE, task.id, TaskChanges.create(title="x"), expected_versions=frozenset({2})
        )
    with pytest.raises(StaleVersion):
        await DeleteTask(repository, RecentTasks()).execute(
            ALICE, task.id, expected_versions=frozenset()
        )
    done = await CompleteTask(repository, clock, RecentTasks()).execute(
        ALICE, task.id, expected_versions=frozenset({1})
    )
    assert done.version == 2


async def test_delete_unless_a_version_reads_again_when_a_write_comes_between(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(ALICE, title="t")).task
    update = UpdateTask(repository, clock, RecentTasks())
    get = repository.get
    writes_between = 2

    async def get_then_another_write(owner: UserId, task_id: int) -> Task | None:
        # As if a PUT committed right after each read: the delete misses that version.
        nonlocal writes_between
        seen = await get(owner, task_id)
        if writes_between:
            writes_between -= 1
            await update.execute(ALICE, task.id, TaskChanges.create(title=f"w{writes_between}"))
        return seen

    repository.get = get_then_another_write  # type: ignore[method-assign]  # the race, staged

    await DeleteTask(repository, RecentTasks()).execute(
        ALICE, task.id, refused_versions=frozenset({99})
    )

    assert repository.tasks == {}  # the condition held for every version: deleted, not 412


async def test_delete_unless_the_current_version_is_refused_and_kept(
    repository: FakeTaskRepository, clock: FakeClock
) -> None:
    task = (await CreateTask(repository, clock).execute(ALICE, title="t")).task

    with pytest.raises(StaleVersion):
        await DeleteTask(repository, RecentTasks()).execute(
            ALICE, task.id, refused_versions=frozenset({1})
        )
    with pytest.raises(StaleVersion):  # If-Match and If-None-Match: both must hold
        await DeleteTask(repository, RecentTasks()).execute(
            ALICE, task.id, expected_versions=frozenset({1}), refused_versions=frozenset({1})
        )
    assert task.id in repository.tasks
