"""The change feed on PostgreSQL: order, tombstones, the purge horizon, and no missed change."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres import notifications
from adapters.postgres.database import Database
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.functions import CHANGED_OWNERS, INSERT_TASK, WATCH_OWNERS
from adapters.postgres.notifications import ChangeListener, ChangePoller
from adapters.postgres.repository import SqlTaskRepository, SqlTombstoneJanitor
from application.events import ChangeHub
from application.sync import (
    SYNC_TOKEN_LIFETIME,
    ChangePage,
    Deletion,
    FeedPosition,
    SyncTokenExpired,
    Upsert,
)
from application.tasks import ListChanges
from domain.errors import InvalidTask
from domain.task import NewTask, Task, TaskChanges, UserId
from tests.fakes import FakeClock

pytestmark = pytest.mark.usefixtures("clean_tasks")

ALICE = UserId("alice")
BOB = UserId("bob")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def repository(database: Database) -> SqlTaskRepository:
    return SqlTaskRepository(database)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def feed(repository: SqlTaskRepository, clock: FakeClock) -> ListChanges:
    return ListChanges(repository, clock)


async def add(repository: SqlTaskRepository, title: str, owner: UserId = ALICE) -> Task:
    created = await repository.add(NewTask.create(owner=owner, title=title), at=NOW)
    return created.task


async def rename(repository: SqlTaskRepository, task: Task, title: str) -> Task:
    changed = task.edit(TaskChanges.create(title=title), at=NOW)
    saved = await repository.save(changed, expected_version=task.version)
    assert saved is not None
    return saved


def summary(page: ChangePage) -> list[tuple[str, int, str | None]]:
    return [
        ("upsert", c.task.id, c.task.title)
        if isinstance(c, Upsert)
        else ("delete", c.task_id, None)
        for c in page.changes
    ]


async def test_a_first_sync_lists_every_task_once_in_change_order(
    repository: SqlTaskRepository, feed: ListChanges
) -> None:
    a = await add(repository, "a")
    b = await add(repository, "b")
    gone = await add(repository, "gone")
    await add(repository, "bob's", owner=BOB)
    await rename(repository, a, "a, renamed")
    assert await repository.delete(ALICE, gone.id)

    page = await feed.execute(ALICE, since=None)

    # The deleted task is not there, and no deletion either: a first sync holds nothing yet.
    assert summary(page) == [("upsert", b.id, "b"), ("upsert", a.id, "a, renamed")]
    assert not page.has_more
    assert (await feed.execute(ALICE, since=page.end)).changes == []


async def test_later_changes_follow_in_commit_order_with_deletions(
    repository: SqlTaskRepository, feed: ListChanges
) -> None:
    a = await add(repository, "a")
    b = await add(repository, "b")
    start = (await feed.execute(ALICE, since=None)).end

    c = await add(repository, "c")
    a = await rename(repository, a, "a2")
    assert await repository.delete(ALICE, b.id)
    a = await rename(repository, a, "a3")  # a appears once, in its latest state
    await add(repository, "bob's", owner=BOB)

    page = await feed.execute(ALICE, since=start)

    assert summary(page) == [("upsert", c.id, "c"), ("delete", b.id, None), ("upsert", a.id, "a3")]
    deletion = page.changes[1]
    assert isinstance(deletion, Deletion)
    assert abs(deletion.deleted_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert [c.seq for c in page.changes] == sorted(c.seq for c in page.changes)
    again = await feed.execute(ALICE, since=page.end)
    assert again.changes == []
    assert again.end == page.end  # nothing new: the same position


async def test_pages_of_one_follow_each_other_without_gap_or_repeat(
    repository: SqlTaskRepository, feed: ListChanges
) -> None:
    tasks = [await add(repository, f"t{n}") for n in range(5)]
    seen: list[int] = []
    position = None
    for pages in range(1, 20):
        page = await feed.execute(ALICE, since=position, limit=1)
        seen += [c.task.id for c in page.changes if isinstance(c, Upsert)]
        position = page.end
        if not page.has_more:
            break
        if pages <= 4:
            await add(repository, "created while paging")  # lands after, and comes too
    assert seen[:5] == [t.id for t in tasks]
    assert len(seen) == len(set(seen)) == 9


async def test_tasks_stored_before_the_feed_come_in_a_first_sync_by_id(
    repository: SqlTaskRepository, feed: ListChanges, engine: AsyncEngine
) -> None:
    # Rows from before migration 0008 all stand at place 0.
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE tasks DISABLE TRIGGER tasks_change_seq"))
        await connection.execute(
            text(
                "INSERT INTO tasks (user_id, title, completed, created_at, updated_at, version)"
                " SELECT 'alice', 'old ' || n, false, now(), now(), 1 FROM generate_series(1, 3) n"
            )
        )
        await connection.execute(text("ALTER TABLE tasks ENABLE TRIGGER tasks_change_seq"))
    new = await add(repository, "new")
    titles = []
    position = None
    for _ in range(4):
        page = await feed.execute(ALICE, since=position, limit=1)
        titles += [c.task.title for c in page.changes if isinstance(c, Upsert)]
        position = page.end
    assert titles == ["old 1", "old 2", "old 3", "new"]
    assert not page.has_more
    assert (await repository.get(ALICE, new.id)) is not None


async def test_a_deletion_during_a_first_sync_reaches_the_client(
    repository: SqlTaskRepository, feed: ListChanges
) -> None:
    a = await add(repository, "a")
    await add(repository, "b")
    first = await feed.execute(ALICE, since=None, limit=1)
    assert summary(first) == [("upsert", a.id, "a")]
    assert await repository.delete(ALICE, a.id)
    rest = await feed.execute(ALICE, since=first.end)
    assert ("delete", a.id, None) in summary(rest)


async def test_the_feed_is_one_users(
    repository: SqlTaskRepository, feed: ListChanges, database: Database
) -> None:
    mine = await add(repository, "mine")
    theirs = await add(repository, "theirs", owner=BOB)
    start = (await feed.execute(ALICE, since=None)).end
    assert await repository.delete(BOB, theirs.id)
    await rename(repository, mine, "still mine")
    page = await feed.execute(ALICE, since=start)
    assert summary(page) == [("upsert", mine.id, "still mine")]
    # Even with the owner filter stripped, row-level security keeps bob's tombstone out.
    async with database.connection() as connection:
        await connection.execute("SET ROLE taskapi_app")
        try:
            await connection.execute("SELECT set_config('taskapi.user_id', 'alice', false)")
            visible = await connection.fetch("SELECT user_id FROM task_tombstones")
            await connection.execute("SELECT set_config('taskapi.user_id', '', false)")
            unset = await connection.fetch("SELECT user_id FROM task_tombstones")
        finally:
            await connection.execute("RESET ROLE")
            await connection.execute("RESET taskapi.user_id")
    assert visible == []
    assert unset == []


async def test_tombstones_are_kept_31_days_and_tokens_expire_after_30(
    repository: SqlTaskRepository,
    feed: ListChanges,
    clock: FakeClock,
    database: Database,
    engine: AsyncEngine,
) -> None:
    old = await add(repository, "old")
    recent = await add(repository, "recent")
    start = (await feed.execute(ALICE, since=None)).end
    assert await repository.delete(ALICE, old.id)
    assert await repository.delete(ALICE, recent.id)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE task_tombstones SET deleted_at = now() - interval '32 days'"
                " WHERE task_id = :id"
            ),
            {"id": old.id},
        )

    purged = await SqlTombstoneJanitor(database).purge(datetime.now(UTC))

    assert purged == 1
    page = await feed.execute(ALICE, since=start)  # a token younger than 30 days: still whole
    assert summary(page) == [("delete", recent.id, None)]
    clock.advance(SYNC_TOKEN_LIFETIME.total_seconds() + 1)
    with pytest.raises(SyncTokenExpired):  # it might have needed what was purged
        await feed.execute(ALICE, since=start)
    fresh = await feed.execute(ALICE, since=None)  # starting over always works
    assert fresh.changes == []
    assert (await feed.execute(ALICE, since=fresh.end)).changes == []
    assert await SqlTombstoneJanitor(database).purge(datetime.now(UTC)) == 0


async def test_forgetting_a_users_last_deletion_leaves_the_tokens_issued_since_good(
    repository: SqlTaskRepository, feed: ListChanges, database: Database, engine: AsyncEngine
) -> None:
    # Alice's last change is a deletion, forgotten after 31 days: her place in the feed falls
    # below a token from yesterday, which must still hear "nothing changed", not 410.
    await add(repository, "kept")
    gone = await add(repository, "gone")
    assert await repository.delete(ALICE, gone.id)
    token = (await feed.execute(ALICE, since=None)).end
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE task_tombstones SET deleted_at = now() - interval '32 days'")
        )
    assert await SqlTombstoneJanitor(database).purge(datetime.now(UTC)) == 1

    page = await feed.execute(ALICE, since=token)

    assert page.changes == []
    assert page.end.seq == token.seq


async def test_a_change_made_outside_the_api_takes_its_place_too(
    repository: SqlTaskRepository, feed: ListChanges, engine: AsyncEngine
) -> None:
    task = await add(repository, "a")
    start = (await feed.execute(ALICE, since=None)).end
    async with engine.begin() as connection:  # a script, an operator: the triggers still hold
        await connection.execute(
            text(
                "UPDATE tasks SET completed = true, completed_at = now(), version = 2"
                " WHERE id = :id"
            ),
            {"id": task.id},
        )
    page = await feed.execute(ALICE, since=start)
    [change] = page.changes
    assert isinstance(change, Upsert)
    assert change.task.completed


async def test_no_change_is_ever_missed_by_a_reader_following_next_during_concurrent_writes(
    repository: SqlTaskRepository, feed: ListChanges, database: Database
) -> None:
    # Writers on their own connections race; the reader follows `next` all the while, applying
    # what it gets to its copy. Once the writers stop and it has caught up, its copy must be
    # exactly what the database holds.
    copy: dict[int, Task] = {}
    position: FeedPosition | None = None
    stop = asyncio.Event()

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[Task] = []
        for step in range(60):
            roll = rng.random()
            if not mine or roll < 0.4:
                mine.append(await add(repository, f"w{seed}-{step}"))
            elif roll < 0.8:
                index = rng.randrange(len(mine))
                mine[index] = await rename(repository, mine[index], f"w{seed}-{step}-renamed")
            else:
                gone = mine.pop(rng.randrange(len(mine)))
                assert await repository.delete(ALICE, gone.id)
            await asyncio.sleep(rng.random() / 500)

    async def reader() -> None:
        nonlocal position
        while True:
            done = stop.is_set()
            page = await feed.execute(ALICE, since=position, limit=7)
            for change in page.changes:
                if isinstance(change, Upsert):
                    copy[change.task.id] = change.task
                else:
                    copy.pop(change.task_id, None)
            position = page.end
            if done and not page.has_more:
                return

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(seed) for seed in range(6)))
    stop.set()
    await reading

    stored = (await repository.list(ALICE, limit=1000)).tasks
    assert copy == {task.id: task for task in stored}
    assert len(stored) > 0


@pytest.mark.parametrize("limit", [0, 1001])
async def test_the_page_size_is_checked(feed: ListChanges, limit: int) -> None:
    with pytest.raises(InvalidTask, match="limit"):
        await feed.execute(ALICE, since=None, limit=limit)


async def test_the_poll_names_exactly_the_owners_with_changes_after_a_place(
    repository: SqlTaskRepository, database: Database
) -> None:
    async def poll(after: int | None) -> tuple[set[str], int]:
        rows = await database.fetch(CHANGED_OWNERS.call, "", ["alice", "bob", "carol"], after)
        owners = {row["owner"] for row in rows if row["owner"] is not None}
        [place] = [row["place"] for row in rows if row["owner"] is None]
        return owners, place

    bobs = await add(repository, "bob's", owner=BOB)
    _, place = await poll(None)
    assert await poll(place) == (set(), place)
    await add(repository, "alice's")
    assert await repository.delete(BOB, bobs.id)  # a deletion is a change too
    await add(repository, "dave's", owner=UserId("dave"))  # not asked about
    owners, later = await poll(place)
    assert owners == {"alice", "bob"}
    assert later == place + 3


async def test_the_poll_still_wakes_a_stream_for_a_write_that_commits_after_its_first_poll(
    database: Database, direct_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The write takes its place, then the poller's first poll passes that place, then it commits:
    # no later poll names alice for it, so only the window's wake-ups can bring it.
    monkeypatch.setattr(notifications, "POLL_SECONDS", 0.02)
    dsn = DatabaseOptions.from_url(direct_database_url).url.set(drivername="postgresql")
    writer = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    hub = ChangeHub()
    poller = None
    try:
        transaction = writer.transaction()
        await transaction.start()
        await writer.fetch(INSERT_TASK.call, "alice", "late", None, None, 0, [], NOW, None)
        with hub.subscribe("alice") as woken:
            poller = asyncio.create_task(ChangePoller(database, hub).run())
            await asyncio.wait_for(woken.wait(), 5)  # the first poll
            woken.clear()
            await transaction.commit()
            await asyncio.wait_for(woken.wait(), 5)
    finally:
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        await writer.close()


async def _listening(url: str, heard: list[str]) -> asyncpg.Connection:
    dsn = DatabaseOptions.from_url(url).url.set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    await connection.add_listener("taskapi_changes", lambda *args: heard.append(args[3]))
    return connection


async def test_writes_notify_only_while_their_owner_is_leased(
    repository: SqlTaskRepository, database: Database, engine: AsyncEngine, direct_database_url: str
) -> None:
    await _unleased(engine, "alice", "bob", "carol")
    heard: list[str] = []
    listener = await _listening(direct_database_url, heard)
    try:
        task = await add(repository, "nobody streams alice yet")
        await listener.fetchval("SELECT 1")  # a NOTIFY sent at a commit before it arrives first
        assert heard == []
        await database.fetch(WATCH_OWNERS.call, "", ["alice", "carol"], 30)
        task = await rename(repository, task, "now she is")
        await add(repository, "bob's", owner=BOB)
        assert await repository.delete(ALICE, task.id)
        await add(repository, "carol's", owner=UserId("carol"))
        await listener.fetchval("SELECT 1")
        assert heard == ["alice", "alice", "carol"]
        async with engine.begin() as connection:  # the lease ran out
            await connection.execute(text("UPDATE task_watches SET until = now() - interval '1s'"))
        await add(repository, "alice's, unleased again")
        await listener.fetchval("SELECT 1")
        assert heard == ["alice", "alice", "carol"]
    finally:
        await listener.close()


async def _unleased(engine: AsyncEngine, *owners: str) -> None:
    """No lease for these owners (another test, or a server of the e2e tests, may hold one)."""
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM task_watches WHERE user_id = ANY (:owners)"), {"owners": list(owners)}
        )


async def _leases(database: Database, *owners: str) -> dict[str, str]:
    rows = await database.fetch(WATCH_OWNERS.call, "", list(owners), 30)
    return {row["owner"]: row["lease"] for row in rows}


async def _writing(url: str, owner: str) -> asyncpg.Connection:
    """A connection holding ``owner``'s lock: a write of theirs that has not committed yet."""
    dsn = DatabaseOptions.from_url(url).url.set(drivername="postgresql")
    writer = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    await writer.execute("BEGIN")
    await writer.execute(
        "INSERT INTO tasks (user_id, title, completed, created_at, updated_at, version)"
        " VALUES ($1, 'in flight', false, now(), now(), 1)",
        owner,
    )
    return writer


async def test_a_lease_is_taken_under_its_owners_lock_or_left_for_later(
    database: Database, engine: AsyncEngine, direct_database_url: str
) -> None:
    # A write with its place but not committed holds alice's lock: her lease must wait until it
    # commits (else the wake after the lease could read before it, and its commit NOTIFY nobody),
    # but nobody else's lease may wait for her.
    await _unleased(engine, "alice", "bob")
    writer = await _writing(direct_database_url, "alice")
    try:
        assert await _leases(database, "alice", "bob") == {"alice": "busy", "bob": "taken"}
        await writer.execute("COMMIT")
    finally:
        await writer.close()
    assert await _leases(database, "alice", "bob") == {"alice": "taken", "bob": "extended"}
    async with engine.begin() as connection:  # about to run out: taken again, under the lock
        await connection.execute(text("UPDATE task_watches SET until = now() + interval '5s'"))
    assert await _leases(database, "alice") == {"alice": "taken"}


async def test_the_listener_wakes_streams_and_is_not_held_up_by_a_busy_owner(
    repository: SqlTaskRepository, database: Database, engine: AsyncEngine, direct_database_url: str
) -> None:
    await _unleased(engine, "alice", "bob")
    hub = ChangeHub()
    listener = asyncio.create_task(
        ChangeListener(DatabaseOptions.from_url(direct_database_url), hub).run()
    )
    writer = await _writing(direct_database_url, "alice")
    try:
        with hub.subscribe(ALICE) as alice, hub.subscribe(BOB) as bob:
            for _ in range(250):  # bob's lease, while alice's lock is held
                if await database.fetch("SELECT FROM task_watches WHERE user_id = 'bob'"):
                    break
                await asyncio.sleep(0.02)
            bob.clear()
            await add(repository, "bob's", owner=BOB)
            await asyncio.wait_for(bob.wait(), 5)
            alice.clear()
            await writer.execute("COMMIT")  # her lease is taken now, then her streams read
            await asyncio.wait_for(alice.wait(), 5)
            alice.clear()
            await add(repository, "alice's")
            await asyncio.wait_for(alice.wait(), 5)
    finally:
        await writer.close()
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
