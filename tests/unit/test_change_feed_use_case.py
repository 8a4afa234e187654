"""``ListChanges``: where a client stands after each page, and when its token has expired."""

from __future__ import annotations

import pytest

from application.sync import LAST_ID, Deletion, FeedPosition, SyncTokenExpired, Upsert
from application.tasks import CreateTask, ListChanges
from domain.task import UserId
from tests.fakes import FakeClock, FakeTaskRepository

ALICE = UserId("alice")


@pytest.fixture
def repository() -> FakeTaskRepository:
    return FakeTaskRepository()


async def add(repository: FakeTaskRepository, title: str) -> int:
    return (await CreateTask(repository, FakeClock()).execute(ALICE, title=title)).task.id


async def test_a_first_sync_ends_past_everything_it_saw(repository: FakeTaskRepository) -> None:
    a = await add(repository, "a")
    b = await add(repository, "b")
    await repository.delete(ALICE, a)
    page = await ListChanges(repository).execute(ALICE, since=None)
    assert [c.task.id for c in page.changes if isinstance(c, Upsert)] == [b]
    # Its floor is past the deletion of a, which it never needs to hear of.
    assert page.end == FeedPosition(seq=3, task_id=LAST_ID, floor=3)


async def test_a_cut_page_continues_from_its_last_change(repository: FakeTaskRepository) -> None:
    ids = [await add(repository, f"t{n}") for n in range(3)]
    page = await ListChanges(repository).execute(ALICE, since=None, limit=2)
    assert page.has_more
    assert page.end == FeedPosition(seq=2, task_id=ids[1], floor=3)
    assert page.position_after(1) == FeedPosition(seq=1, task_id=ids[0], floor=3)
    rest = await ListChanges(repository).execute(ALICE, since=page.end)
    assert [c.task.id for c in rest.changes if isinstance(c, Upsert)] == [ids[2]]


async def test_deletions_come_after_a_first_sync(repository: FakeTaskRepository) -> None:
    a = await add(repository, "a")
    start = (await ListChanges(repository).execute(ALICE, since=None)).end
    await repository.delete(ALICE, a)
    [change] = (await ListChanges(repository).execute(ALICE, since=start)).changes
    assert isinstance(change, Deletion)
    assert change.task_id == a


async def test_a_token_below_the_horizon_has_expired(repository: FakeTaskRepository) -> None:
    await add(repository, "a")
    start = (await ListChanges(repository).execute(ALICE, since=None)).end
    repository.horizon = start.floor + 1
    with pytest.raises(SyncTokenExpired):
        await ListChanges(repository).execute(ALICE, since=start)
    # Starting over is never expired, and stands at or past the horizon.
    again = await ListChanges(repository).execute(ALICE, since=None)
    assert again.end.floor >= repository.horizon
    assert (await ListChanges(repository).execute(ALICE, since=again.end)).changes == []
