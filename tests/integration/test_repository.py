"""``SqlTaskRepository`` against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import Database, PoolOptions
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.functions import CREATE_TASK_ONCE, LIST_TASKS
from adapters.postgres.repository import SqlTaskRepository
from adapters.postgres.row_security import IDEMPOTENCY_KEY_LIFETIME
from application.errors import IdempotencyConflict, IdempotencyInProgress, StorageUnavailable
from application.listing import OLDEST_FIRST, ListPosition, TaskFilter
from application.ports import Creation, IdempotencyKey
from domain.errors import StaleVersion, TaskLimitReached
from domain.task import NewTask, TaskChanges, UserId

pytestmark = pytest.mark.usefixtures("clean_tasks")

ALICE = UserId("alice")
BOB = UserId("bob")
T0 = datetime(2026, 1, 14, 9, 30, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def repository(database: Database) -> SqlTaskRepository:
    return SqlTaskRepository(database)


def draft(title: str = "Buy groceries", owner: UserId = ALICE) -> NewTask:
    return NewTask.create(owner=owner, title=title, description=None)


async def test_add_returns_the_stored_task(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(), at=T0)).task
    assert task.id >= 1
    assert (task.owner, task.title, task.completed, task.completed_at) == (
        ALICE,
        "Buy groceries",
        False,
        None,
    )
    assert task.created_at == task.updated_at == T0  # microseconds survive the round trip
    assert task.version == 1
    assert await repository.get(ALICE, task.id) == task


async def test_an_unchanged_task_read_again_is_the_entity_built_before(
    repository: SqlTaskRepository,
) -> None:
    kept = (await repository.add(draft("kept"), at=at(1))).task
    edited = (await repository.add(draft("edited"), at=at(2))).task
    first = (await repository.list(ALICE)).tasks
    assert [task.id for task in first] == [kept.id, edited.id]

    saved = await repository.save(
        edited.edit(TaskChanges.create(title="edited again"), at=at(3)),
        expected_version=edited.version,
    )
    second = (await repository.list(ALICE)).tasks
    assert second[0] is first[0]
    assert second[1] is not first[1]
    assert (second[1].title, second[1].version) == ("edited again", 2)
    assert second[1] == saved
    assert await repository.get(ALICE, kept.id) is first[0]


async def test_get_is_scoped_by_owner(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(owner=BOB), at=T0)).task
    assert await repository.get(ALICE, task.id) is None
    assert await repository.get(BOB, task.id) == task


async def test_list_is_scoped_ordered_filtered_and_limited(repository: SqlTaskRepository) -> None:
    # Created out of id order on purpose: creation time decides, then id.
    late = (await repository.add(draft("late"), at=at(10))).task
    early = (await repository.add(draft("early"), at=at(1))).task
    tie_a = (await repository.add(draft("tie a"), at=at(5))).task
    tie_b = (await repository.add(draft("tie b"), at=at(5))).task
    await repository.add(draft("bob's", owner=BOB), at=at(2))
    await repository.save(tie_a.complete(at=at(20)), expected_version=tie_a.version)

    listed = (await repository.list(ALICE)).tasks
    assert [t.id for t in listed] == [early.id, tie_a.id, tie_b.id, late.id]
    assert [
        t.id for t in (await repository.list(ALICE, where=TaskFilter(completed=True))).tasks
    ] == [tie_a.id]
    assert [
        t.id for t in (await repository.list(ALICE, where=TaskFilter(completed=False))).tasks
    ] == [
        early.id,
        tie_b.id,
        late.id,
    ]
    assert [t.id for t in (await repository.list(ALICE, limit=2)).tasks] == [early.id, tie_a.id]
    assert (await repository.list(UserId("nobody"))).tasks == []


async def test_save_stores_exactly_the_entitys_values(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(), at=T0)).task
    # Values no rule of the domain would produce together: the store applies them as given.
    decided = replace(
        task,
        title="renamed",
        description="described",
        completed=True,
        completed_at=at(7),
        updated_at=at(3),
        version=5,
    )
    saved = await repository.save(decided, expected_version=1)
    assert saved == decided
    assert await repository.get(ALICE, task.id) == decided
    # created_at and the owner are not the entity's to change: they stay as stored.
    moved = replace(decided, created_at=at(99), version=6)
    assert await repository.save(moved, expected_version=5) == replace(moved, created_at=T0)


async def test_save_stores_what_the_domain_decided(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(), at=T0)).task
    completed = task.complete(at=at(1))
    assert await repository.save(completed, expected_version=task.version) == completed
    edited = completed.edit(TaskChanges.create(completed=False, title="again"), at=at(2))
    assert await repository.save(edited, expected_version=completed.version) == edited
    assert await repository.get(ALICE, task.id) == edited


async def test_a_save_from_a_stale_version_misses_and_changes_nothing(
    repository: SqlTaskRepository,
) -> None:
    task = (await repository.add(draft(), at=T0)).task
    first = replace(task, title="first", updated_at=at(1), version=2)
    assert await repository.save(first, expected_version=1) == first
    late = replace(task, title="late", updated_at=at(2), version=2)
    assert await repository.save(late, expected_version=1) is None
    assert await repository.get(ALICE, task.id) == first


async def test_a_save_of_a_missing_or_someone_elses_task_misses(
    repository: SqlTaskRepository,
) -> None:
    bobs = (await repository.add(draft(owner=BOB), at=T0)).task
    stolen = replace(bobs, owner=ALICE, title="mine now", version=2)
    assert await repository.save(stolen, expected_version=1) is None
    assert await repository.get(BOB, bobs.id) == bobs
    gone = replace(bobs, id=bobs.id + 1000, version=2)
    assert await repository.save(gone, expected_version=1) is None


async def test_of_racing_saves_from_the_same_version_exactly_one_wins(
    repository: SqlTaskRepository,
) -> None:
    task = (await repository.add(draft(), at=T0)).task
    contenders = [replace(task, title=f"t{n}", updated_at=at(n), version=2) for n in range(20)]
    results = await asyncio.gather(
        *(repository.save(contender, expected_version=1) for contender in contenders)
    )
    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    assert winners[0] in contenders
    assert await repository.get(ALICE, task.id) == winners[0]


async def test_writes_to_another_users_task_change_nothing(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(owner=BOB), at=T0)).task
    assert await repository.delete(ALICE, task.id) is False
    assert await repository.delete(ALICE, task.id, expected_versions=frozenset({1})) is False
    assert await repository.get(BOB, task.id) == task


async def test_delete_removes_the_row(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(), at=T0)).task
    assert await repository.delete(ALICE, task.id) is True
    assert await repository.get(ALICE, task.id) is None
    assert await repository.delete(ALICE, task.id) is False


async def test_a_conditional_delete_tells_stale_from_missing(
    repository: SqlTaskRepository,
) -> None:
    task = (await repository.add(draft(), at=T0)).task
    moved = await repository.save(replace(task, title="moved", version=3), expected_version=1)
    assert moved is not None
    with pytest.raises(StaleVersion) as stale:
        await repository.delete(ALICE, task.id, expected_versions=frozenset({1, 2}))
    assert stale.value.current_version == 3
    assert await repository.get(ALICE, task.id) == moved
    assert await repository.delete(ALICE, task.id, expected_versions=frozenset({1, 3})) is True
    assert await repository.delete(ALICE, task.id, expected_versions=frozenset({3})) is False


async def test_racing_conditional_deletes_delete_once(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(), at=T0)).task
    results = await asyncio.gather(
        *(repository.delete(ALICE, task.id, expected_versions=frozenset({1})) for _ in range(10))
    )
    assert results.count(True) == 1
    assert results.count(False) == 9  # gone, not stale: the row no longer exists


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("title", ""),
        ("title", " padded "),
        ("title", "x" * 501),
        ("title", "tab\there"),
        ("title", "c1\u0085"),
        ("description", "d" * 5001),
        ("description", "bell\u0007"),
        ("user_id", ""),
    ],
)
async def test_the_table_refuses_what_the_domain_refuses(
    engine: AsyncEngine, column: str, value: str
) -> None:
    row = {"user_id": "alice", "title": "ok", "description": None, column: value}
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO tasks (user_id, title, description, completed, created_at,"
                    " updated_at, version) VALUES (:user_id, :title, :description, false,"
                    " now(), now(), 1)"
                ),
                row,
            )


@pytest.mark.parametrize("version", ["version", "version - 1"])
async def test_the_table_refuses_an_update_that_does_not_raise_the_version(
    repository: SqlTaskRepository, engine: AsyncEngine, version: str
) -> None:
    # The version is the row's concurrency token (ETags, conditional saves): the same version
    # must never stand for two contents, whoever writes.
    task = (await repository.add(draft(), at=T0)).task
    with pytest.raises(IntegrityError, match="version must grow"):
        async with engine.begin() as connection:
            await connection.execute(
                text(f"UPDATE tasks SET title = 'by hand', version = {version} WHERE id = :id"),  # noqa: S608  # a parametrized column expression
                {"id": task.id},
            )
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE tasks SET title = 'by hand', version = version + 1 WHERE id = :id"),
            {"id": task.id},
        )
    stored = await repository.get(ALICE, task.id)
    assert stored is not None
    assert (stored.title, stored.version) == ("by hand", 2)


async def test_the_table_accepts_line_breaks_in_descriptions(
    repository: SqlTaskRepository,
) -> None:
    task = (
        await repository.add(
            NewTask.create(owner=ALICE, title="t", description="a\n\tb\r\nc"), at=T0
        )
    ).task
    assert task.description == "a\n\tb\r\nc"


async def test_an_unreachable_database_is_storage_unavailable_quickly() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    options = DatabaseOptions.from_url("postgresql://nobody@127.0.0.1:9/none", connect_timeout=1.0)
    database = Database(options, PoolOptions(acquire_timeout=1.0))
    await database.start()
    try:
        repository = SqlTaskRepository(database)
        async with asyncio.timeout(5):
            with pytest.raises(StorageUnavailable):
                await repository.get(ALICE, 1)
            with pytest.raises(StorageUnavailable):
                await repository.add(draft(), at=T0)
        assert await database.ping(1.0) is False
    finally:
        await database.close()


async def test_the_pool_is_in_use_only_while_a_connection_is_open(database_url: str) -> None:
    # What the janitor asks before it purges: none open means no request for a while.
    database = Database(DatabaseOptions.from_url(database_url), PoolOptions(recycle_seconds=0.2))
    await database.start()
    try:
        assert not database.in_use()
        assert await database.ping(2.0)
        assert database.in_use()
        for _ in range(100):  # closed once idle for recycle_seconds
            if not database.in_use():
                break
            await asyncio.sleep(0.1)
        assert not database.in_use()
    finally:
        await database.close()


async def explain_nested(url: str, query: str, *args: object, generic: bool = False) -> str:
    """The plans of the statements a function call runs, as auto_explain reports them.

    ``generic`` forces the generic plan PL/pgSQL settles on after a few calls.
    """
    dsn = DatabaseOptions.from_url(url).url.set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    plans: list[str] = []
    conn.add_log_listener(lambda _conn, message: plans.append(str(message)))
    try:
        await conn.execute(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;"
            " SET auto_explain.log_nested_statements = on; SET client_min_messages = log;"
            " SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off;"
            " SET jit = off" + ("; SET plan_cache_mode = force_generic_plan" if generic else "")
        )
        await conn.fetch(query, *args)
    finally:
        await conn.close()
    return "\n".join(plans)


def list_call(owner: str, sort: str = "created_at", **given: object) -> tuple[object, ...]:
    """The arguments of ``taskapi_list_tasks``: everything unset unless given."""
    names = [p.name.removeprefix("p_") for p in LIST_TASKS.params]
    values: dict[str, object] = {
        **dict.fromkeys(names),
        "owner": owner,
        "sort": sort,
        "descending": False,
        "limit": 51,
    }
    return tuple({**values, **given}[name] for name in names)


_SORT_INDEXES: dict[str, tuple[str, str, dict[str, object]]] = {
    "created_at": ("tasks_user_created_idx", "created_at", {"after_at": T0}),
    "updated_at": ("tasks_user_updated_idx", "updated_at", {"after_at": T0}),
    "due_at": ("tasks_user_due_idx", "due_at", {"after_at": T0}),
    "priority": ("tasks_user_priority_idx", "priority", {"after_rank": 2}),
    "title": ("tasks_user_title_idx", "title_key", {"after_title": "Milk"}),
}


@pytest.fixture
async def other_users_tasks(database_url: str, clean_tasks: None) -> None:
    """Other users' tasks, half of them undated, and the statistics of the table they make.

    The planner then costs each index as at scale: on a table of a few rows, which earlier tests
    happened to leave its statistics from, any index with a filter can look as cheap.
    """
    dsn = DatabaseOptions.from_url(database_url).url.set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await conn.execute(
            "INSERT INTO tasks (user_id, title, completed, version, created_at, updated_at,"
            " due_at, priority)"
            " SELECT 'user' || (n % 20), 'seed ' || n, false, 1, now(), now(),"
            " CASE WHEN n % 2 = 0 THEN now() + n * interval '1 minute' END, n % 4"
            " FROM generate_series(1, 4000) AS n;"
            " ANALYZE tasks"
        )
    finally:
        await conn.close()


@pytest.mark.usefixtures("other_users_tasks")
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("sort", list(_SORT_INDEXES))
async def test_pages_are_keyset_not_offset_and_served_by_the_index(
    database_url: str, sort: str, descending: bool
) -> None:
    assert "OFFSET" not in LIST_TASKS.ddl().upper()
    index, key, position = _SORT_INDEXES[sort]
    beyond = "<" if descending else ">"
    first_page: dict[str, object] = {}
    for after in (first_page, {"after_id": 1, **position}):
        call = list_call("alice", sort, descending=descending, **after)
        plans = await explain_nested(database_url, LIST_TASKS.call, *call)
        [page] = [
            p for p in plans.split("Query Text:") if "FROM tasks WHERE" in p and "ORDER BY" in p
        ]
        # An ordered range scan of the index, no sort; the cursor is where the range starts.
        assert f"Index Scan{' Backward' if descending else ''} using {index} on tasks " in page
        # No sort of the user's tasks; only the due order's union of two page-sized parts is.
        union_sorts = re.findall(r"Sort Key: \(\(\w+\.due_at IS NULL\)\)", page)
        assert page.count("Sort Key:") == len(union_sorts) == ("UNION ALL" in page), page
        if after:
            assert re.search(rf"Index Cond: .*ROW\({key}, id\) {beyond} ROW\(", page), page
        if sort == "due_at" and (descending or after):  # then the undated tasks, by id
            assert "using tasks_user_undated_idx on tasks " in page, page


@pytest.mark.usefixtures("other_users_tasks")
async def test_a_page_after_an_undated_task_reads_only_undated_ones(database_url: str) -> None:
    call = list_call("alice", "due_at", after_id=7)
    plans = await explain_nested(database_url, LIST_TASKS.call, *call)
    [page] = [p for p in plans.split("Query Text:") if "FROM tasks WHERE" in p and "ORDER BY" in p]
    assert "tasks_user_due_idx" not in page.split("InitPlan")[0], page
    assert re.search(r"Index Cond: .*id > ", page), page


async def test_a_page_past_the_end_still_counts(repository: SqlTaskRepository) -> None:
    for n in range(2):
        await repository.add(draft(f"t{n}"), at=at(n))
    first = await repository.list(ALICE, limit=2)
    last = first.tasks[-1]
    beyond = await repository.list(ALICE, after=ListPosition(last.created_at, last.id))
    assert (beyond.tasks, beyond.total, beyond.has_more) == ([], 2, False)


async def test_pages_follow_each_other_and_count_the_filter(repository: SqlTaskRepository) -> None:
    added = [(await repository.add(draft(f"t{n}"), at=at(n % 3))).task for n in range(7)]
    await repository.add(draft("bob's", owner=BOB), at=at(0))
    done = added[2]
    await repository.save(done.complete(at=at(9)), expected_version=done.version)
    expected = sorted(added, key=lambda task: (task.created_at, task.id))

    seen: list[int] = []
    after = None
    while True:
        page = await repository.list(ALICE, limit=3, after=after)
        assert page.total == 7
        seen += [task.id for task in page.tasks]
        after = page.after_last(OLDEST_FIRST)
        if after is None:
            assert not page.has_more
            break
    assert seen == [task.id for task in expected]

    open_tasks = await repository.list(ALICE, where=TaskFilter(completed=False), limit=5)
    assert (len(open_tasks.tasks), open_tasks.total, open_tasks.has_more) == (5, 6, True)
    last = await repository.list(
        ALICE, where=TaskFilter(completed=False), after=open_tasks.after_last(OLDEST_FIRST)
    )
    assert (len(last.tasks), last.total, last.has_more) == (1, 6, False)
    done_page = await repository.list(ALICE, where=TaskFilter(completed=True))
    assert ([task.id for task in done_page.tasks], done_page.total) == ([done.id], 1)
    assert (await repository.list(UserId("nobody"))).total == 0


@pytest.fixture
async def clean_keys(engine: AsyncEngine) -> AsyncIterator[None]:
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE idempotency_keys"))
    yield
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE idempotency_keys"))


KEY = IdempotencyKey(key="retry-1", fingerprint="body-a")


@pytest.mark.usefixtures("clean_keys")
async def test_an_idempotent_create_replays_the_first_response(
    repository: SqlTaskRepository,
) -> None:
    first = await repository.add(draft("first"), at=T0, idempotency=KEY)
    assert not first.replayed
    # The task changes afterwards; the replay is still the first response, exactly.
    await repository.save(first.task.complete(at=at(5)), expected_version=1)
    again = await repository.add(draft("first"), at=at(10), idempotency=KEY)
    assert again.replayed
    assert again.task == first.task
    assert again.task.created_at == T0  # microseconds survive the stored snapshot
    # The snapshot replayed is not taken for the task as it is now.
    listed = await repository.list(ALICE)
    assert listed.total == 1
    assert [(task.completed, task.version) for task in listed.tasks] == [(True, 2)]
    assert await repository.get(ALICE, first.task.id) == listed.tasks[0]
    # Keys are per user: bob's same key is a new creation.
    bobs = await repository.add(draft("first", owner=BOB), at=T0, idempotency=KEY)
    assert not bobs.replayed
    assert bobs.task.id != first.task.id


@pytest.mark.usefixtures("clean_keys")
async def test_an_idempotent_create_with_another_body_conflicts(
    repository: SqlTaskRepository,
) -> None:
    await repository.add(draft("first"), at=T0, idempotency=KEY)
    other = IdempotencyKey(key=KEY.key, fingerprint="body-b")
    with pytest.raises(IdempotencyConflict):
        await repository.add(draft("second"), at=at(1), idempotency=other)
    assert (await repository.list(ALICE)).total == 1


@pytest.mark.usefixtures("clean_keys")
async def test_an_expired_key_is_taken_over_as_new(repository: SqlTaskRepository) -> None:
    first = await repository.add(draft("first"), at=T0, idempotency=KEY)
    later = T0 + IDEMPOTENCY_KEY_LIFETIME + timedelta(seconds=1)
    other = IdempotencyKey(key=KEY.key, fingerprint="body-b")
    second = await repository.add(draft("second"), at=later, idempotency=other)
    assert not second.replayed
    assert second.task.id != first.task.id


@pytest.mark.usefixtures("clean_keys")
async def test_racing_idempotent_creates_make_one_task(repository: SqlTaskRepository) -> None:
    results = await asyncio.gather(
        *(repository.add(draft("once"), at=T0, idempotency=KEY) for _ in range(10))
    )
    assert [result.replayed for result in results].count(False) == 1
    assert {result.task for result in results} == {results[0].task}
    assert (await repository.list(ALICE)).total == 1


@pytest.mark.usefixtures("clean_keys")
async def test_a_key_held_in_flight_too_long_is_in_progress(
    repository: SqlTaskRepository, database_url: str
) -> None:
    dsn = DatabaseOptions.from_url(database_url).url.set(drivername="postgresql")
    holder = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        # Another request's transaction has claimed the key and not committed.
        await holder.execute("BEGIN")
        await holder.fetch(
            CREATE_TASK_ONCE.call,
            ALICE,
            "held",
            None,
            None,
            0,
            [],
            KEY.key,
            KEY.fingerprint,
            T0,
            T0,
            None,
        )
        started = asyncio.get_running_loop().time()
        with pytest.raises(IdempotencyInProgress):
            await repository.add(draft("held"), at=T0, idempotency=KEY)
        waited = asyncio.get_running_loop().time() - started
        assert 1.5 < waited < 2.5  # the function's lock_timeout, not the statement timeout
        await holder.execute("COMMIT")
    finally:
        await holder.close()
    replay = await repository.add(draft("held"), at=T0, idempotency=KEY)
    assert replay.replayed
    assert replay.task.title == "held"


@pytest.mark.usefixtures("clean_keys")
async def test_a_key_committed_by_its_first_request_meanwhile_is_replayed(
    repository: SqlTaskRepository, database_url: str
) -> None:
    dsn = DatabaseOptions.from_url(database_url).url.set(drivername="postgresql")
    holder = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await holder.execute("BEGIN")
        [first] = await holder.fetch(
            CREATE_TASK_ONCE.call,
            ALICE,
            "first",
            None,
            None,
            0,
            [],
            KEY.key,
            KEY.fingerprint,
            T0,
            T0,
            None,
        )
        waiting = asyncio.create_task(repository.add(draft("first"), at=T0, idempotency=KEY))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await holder.execute("COMMIT")
        replay = await waiting
    finally:
        await holder.close()
    assert replay.replayed
    assert replay.task.id == first["id"]


async def test_racing_creates_at_the_limit_never_pass_it(repository: SqlTaskRepository) -> None:
    async def create(number: int) -> bool:
        try:
            await repository.add(draft(f"t{number}"), at=at(number), max_tasks=5)
        except TaskLimitReached:
            return False
        return True

    outcomes = await asyncio.gather(*(create(number) for number in range(12)))
    assert outcomes.count(True) == 5
    page = await repository.list(ALICE, limit=50)
    assert page.total == 5
    # Another user's limit is their own.
    await repository.add(draft("bob's", owner=BOB), at=at(99), max_tasks=5)


async def test_an_idempotent_create_at_the_limit_keeps_no_key_and_a_replay_still_replays(
    repository: SqlTaskRepository,
) -> None:
    first = await repository.add(
        draft("one"), at=at(0), max_tasks=1, idempotency=IdempotencyKey("k1", "f1")
    )
    replay = await repository.add(
        draft("one"), at=at(1), max_tasks=1, idempotency=IdempotencyKey("k1", "f1")
    )
    assert replay == Creation(first.task, replayed=True)
    with pytest.raises(TaskLimitReached):
        await repository.add(
            draft("two"), at=at(2), max_tasks=1, idempotency=IdempotencyKey("k2", "f2")
        )
    await repository.delete(ALICE, first.task.id)
    later = await repository.add(
        draft("two"), at=at(3), max_tasks=1, idempotency=IdempotencyKey("k2", "f2")
    )
    assert later.replayed is False  # k2 was not kept by the refused call


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT user_id, tasks FROM task_counts"))
        return {user_id: tasks for user_id, tasks in rows if tasks}


async def _counted(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT user_id, count(*) FROM tasks GROUP BY user_id")
        )
        return {row[0]: row[1] for row in rows}


async def test_each_owners_count_follows_every_writer_and_gives_the_unfiltered_total(
    repository: SqlTaskRepository, engine: AsyncEngine
) -> None:
    alices = [(await repository.add(draft(f"a{n}"), at=at(n))).task for n in range(4)]
    await repository.add(draft("b", owner=BOB), at=at(9), idempotency=IdempotencyKey("k", "f"))
    assert await repository.delete(ALICE, alices[0].id)
    async with engine.begin() as connection:  # a script as superuser: the triggers still count
        await connection.execute(  # one statement, many owners
            text(
                "INSERT INTO tasks (user_id, title, completed, created_at, updated_at, version)"
                " SELECT u, u || n, false, now(), now(), 1"
                " FROM generate_series(1, 3) n, unnest(ARRAY['carol', 'dave']) u"
            )
        )
        await connection.execute(text("DELETE FROM tasks WHERE title IN ('carol1', 'dave1')"))
        await connection.execute(text("DELETE FROM tasks WHERE title = 'carol2'"))
    counts = {"alice": 3, "bob": 1, "carol": 1, "dave": 2}
    assert await _counts(engine) == await _counted(engine) == counts
    with pytest.raises(IntegrityError, match="a task keeps its owner"):
        async with engine.begin() as connection:  # even a superuser: counts and feeds are per owner
            await connection.execute(
                text("UPDATE tasks SET user_id = 'bob', version = 2 WHERE title = 'dave2'")
            )
    assert await _counts(engine) == counts
    assert (await repository.list(ALICE, limit=1)).total == 3
    assert (await repository.list(BOB, limit=50)).total == 1
    assert (await repository.list(UserId("nobody"), limit=50)).total == 0
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE tasks"))
    assert await _counts(engine) == {}
    assert (await repository.list(ALICE, limit=1)).total == 0
