"""``ListChanges``: where a client stands after each page, and when its token has expired."""

from __future__ import annotations

from dataclasses import replace

import pytest

from application.sync import (
    LAST_ID,
    SYNC_TOKEN_LIFETIME,
    Deletion,
    FeedPosition,
    SyncTokenExpired,
    Upsert,
)
from application.tasks import CreateTask, ListChanges
from domain.task import UserId
from tests.fakes import FakeClock, FakeTaskRepository

ALICE = UserId("alice")


@pytest.fixture
def repository() -> FakeTaskRepository:
    return FakeTaskRepository()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def feed(repository: FakeTaskRepository, clock: FakeClock) -> ListChanges:
    return ListChanges(repository, clock)


async def add(repository: FakeTaskRepository, title: str) -> int:
    return (await CreateTask(repository, FakeClock()).execute(ALICE, title=title)).task.id


async def test_a_first_sync_ends_past_everything_it_saw(
    repository: FakeTaskRepository, feed: ListChanges, clock: FakeClock
) -> None:
    a = await add(repository, "a")
    b = await add(repository, "b")
    await repository.delete(ALICE, a)
    page = await feed.execute(ALICE, since=None)
    assert [c.task.id for c in page.changes if isinstance(c, Upsert)] == [b]
    # Its floor is past the deletion of a, which it never needs to hear of.
    assert page.end == FeedPosition(seq=3, task_id=LAST_ID, floor=3, as_of=clock.now())


async def test_a_cut_page_continues_from_its_last_change(
    repository: FakeTaskRepository, feed: ListChanges, clock: FakeClock
) -> None:
    ids = [await add(repository, f"t{n}") for n in range(3)]
    page = await feed.execute(ALICE, since=None, limit=2)
    assert page.has_more
    assert page.end == FeedPosition(seq=2, task_id=ids[1], floor=3, as_of=clock.now())
    assert page.position_after(1) == FeedPosition(1, ids[0], 3, clock.now())
    rest = await feed.execute(ALICE, since=page.end)
    assert [c.task.id for c in rest.changes if isinstance(c, Upsert)] == [ids[2]]


async def test_deletions_come_after_a_first_sync(
    repository: FakeTaskRepository, feed: ListChanges
) -> None:
    a = await add(repository, "a")
    start = (await feed.execute(ALICE, since=None)).end
    await repository.delete(ALICE, a)
    [change] = (await feed.execute(ALICE, since=start)).changes
    assert isinstance(change, Deletion)
    assert change.task_id == a


async def test_a_token_expires_after_30_days_and_each_read_renews_it(
    repository: FakeTaskRepository, feed: ListChanges, clock: FakeClock
) -> None:
    await add(repository, "a")
    kept = (await feed.execute(ALICE, since=None)).end
    clock.advance(SYNC_TOKEN_LIFETIME.total_seconds() - 60)
    renewed = (await feed.execute(ALICE, since=kept)).end  # nothing new, but read 30 days on
    assert renewed.as_of == clock.now()
    clock.advance(120)
    with pytest.raises(SyncTokenExpired):
        await feed.execute(ALICE, since=kept)
    assert (await feed.execute(ALICE, since=renewed)).changes == []  # an idle client keeps going


async def test_a_page_short_of_the_end_keeps_the_age_of_the_sync_it_continues(
    repository: FakeTaskRepository, feed: ListChanges, clock: FakeClock
) -> None:
    # A deletion a day after a sync, read a page at a time 29 days later: the positions before
    # the deletion may not pass for newer than the sync, or one kept for another 29 days would
    # still be good after the janitor forgot the deletion, and the client would never hear of it.
    ids = [await add(repository, f"t{n}") for n in range(3)]
    synced = clock.now()
    start = (await feed.execute(ALICE, since=None)).end
    clock.advance(86_400)
    await add(repository, "late")
    await repository.delete(ALICE, ids[0])
    clock.advance(SYNC_TOKEN_LIFETIME.total_seconds() - 2 * 86_400)
    page = await feed.execute(ALICE, since=start, limit=1)
    assert page.has_more
    assert page.end.as_of == synced
    assert page.position_after(1).as_of == synced
    clock.advance(2 * 86_400)  # past 30 days from the sync: the page's next is refused
    with pytest.raises(SyncTokenExpired):
        await feed.execute(ALICE, since=page.end)
    last = await feed.execute(ALICE, since=replace(page.end, as_of=clock.now()))
    assert not last.has_more
    assert last.end.as_of == clock.now()  # the end of the feed: a fresh 30 days


async def test_a_token_from_before_the_feed_started_has_expired(
    repository: FakeTaskRepository, feed: ListChanges
) -> None:
    await add(repository, "a")
    start = (await feed.execute(ALICE, since=None)).end
    repository.horizon = start.floor + 1  # the feed was made again (a downgrade, an upgrade)
    with pytest.raises(SyncTokenExpired):
        await feed.execute(ALICE, since=start)
    again = await feed.execute(ALICE, since=None)  # starting over works
    assert again.end.floor >= repository.horizon
    assert (await feed.execute(ALICE, since=again.end)).changes == []


async def test_a_token_from_before_an_erasure_has_expired(
    repository: FakeTaskRepository, feed: ListChanges
) -> None:
    # The owner's rows and deletions were erased (``taskapi delete-user``): a device still holding
    # a token must start over, not hear "nothing changed" and keep the tasks for good.
    a = await add(repository, "a")
    await add(repository, "b")
    await repository.delete(ALICE, a)
    kept = (await feed.execute(ALICE, since=None)).end
    assert (await feed.execute(ALICE, since=kept)).changes == []
    repository.erase(ALICE)
    with pytest.raises(SyncTokenExpired):
        await feed.execute(ALICE, since=kept)
    again = await feed.execute(ALICE, since=None)  # starting over: an empty list
    assert again.changes == []
    assert (await feed.execute(ALICE, since=again.end)).changes == []
    await add(repository, "c")  # however far the feed moves on, the old token stays refused
    with pytest.raises(SyncTokenExpired):
        await feed.execute(ALICE, since=kept)


async def test_a_token_past_what_is_still_remembered_is_still_good(
    repository: FakeTaskRepository, feed: ListChanges
) -> None:
    # The janitor forgot the owner's last deletion (a month old): a token from after it, and
    # yesterday's for that matter, has nothing new, and no reason to start over.
    a = await add(repository, "a")
    await repository.delete(ALICE, a)
    kept = (await feed.execute(ALICE, since=None)).end
    repository.tombstones.clear()
    page = await feed.execute(ALICE, since=kept)
    assert page.changes == []
    assert page.end.seq == kept.seq
