"""The real ``taskapi`` command: its exit on bad configuration, ``serve`` and ``migrate``."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.accounts import erase_user
from adapters.postgres.engine import DatabaseOptions, operator_connection
from adapters.postgres.functions import INSERT_TASK
from adapters.postgres.restore import ID_GAP, expire_sync_tokens
from tests.database import create_database, drop_database
from tests.jwks import JwksServer, SigningKey, jwks
from tests.process import TASKAPI, clean_env, taskapi, taskapi_serve
from tests.tokens import SECRET

GOOD_URL = "postgresql://u@127.0.0.1:1/db"
JWKS_URL = "https://auth.example.com/api/auth/jwks"


def test_the_real_command_exits_2_with_one_line_on_stderr(tmp_path: Path) -> None:
    # Each bad setting is checked in process (tests/unit/test_cli_settings.py); this proves the
    # console script itself: exit status, a single stderr line, no traceback, no secret.
    result = taskapi(
        "serve", "--port", "1", cwd=tmp_path, timeout=30,
        DATABASE_URL="mysql://u:hunter2hunter2@h/db", JWT_SECRET=SECRET,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("taskapi: configuration error: DATABASE_URL")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for secret in (SECRET, "hunter2hunter2"):
        assert secret not in result.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "192.0.2.1"])  # the port taken; not this host's
def test_serve_that_cannot_listen_says_so_in_one_line(tmp_path: Path, host: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = taskapi(
            "serve", "--host", host, "--port", str(port), cwd=tmp_path, timeout=30,
            DATABASE_URL=GOOD_URL, JWT_SECRET=SECRET,
        )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"taskapi: serve failed: cannot listen on {host}:{port}")


def test_serve_with_only_a_jwks_starts_and_verifies_its_tokens(
    tmp_path: Path, database_url: str, clean_tasks: None
) -> None:
    key = SigningKey.generate("EdDSA")
    jwks_server = JwksServer(jwks(key)).start()
    try:
        with taskapi_serve(
            tmp_path,
            DATABASE_URL=database_url,
            JWT_JWKS_URL=jwks_server.url,
            CURSOR_SECRET="c" * 32,  # the test database's URL holds no password to derive it from
        ) as (base, _):
            assert jwks_server.requests == 0
            headers = {"Authorization": f"Bearer {key.token('alice')}"}
            listed = httpx.get(f"{base}/api/alice/tasks", headers=headers, timeout=10)
            assert listed.status_code == 200, listed.text
            assert jwks_server.requests == 1
    finally:
        jwks_server.stop()


async def test_migrate_applies_the_schema(tmp_path: Path, postgres_server_url: str) -> None:
    url = await create_database(postgres_server_url, prefix="taskapi_cli")
    try:
        result = taskapi("migrate", cwd=tmp_path, DATABASE_URL=url)
        assert result.returncode == 0, result.stderr
        # "head" named as the revision it is.
        assert re.search(r" is at revision \d{4} \(.+\)$", result.stdout.rstrip()), result.stdout
        down = taskapi("migrate", "base", "--down", cwd=tmp_path, DATABASE_URL=url)
        assert down.returncode == 0, down.stderr
        assert down.stdout.rstrip().endswith("is at no revision (empty)")
    finally:
        await drop_database(postgres_server_url, url)


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("closed port", "nothing accepts connections"),
        # 'role "nobody_here" does not exist' under trust; a server that asks for passwords says
        # 'password authentication failed for user "nobody_here"' and hides which roles exist.
        ("unknown role", '"nobody_here"'),
        ("unknown database", 'database "taskapi_no_such_db"'),
        ("unknown host", "cannot be resolved"),
    ],
)
def test_a_database_failure_is_one_line_and_exit_1(
    tmp_path: Path, postgres_server_url: str, case: str, says: str
) -> None:
    server = make_url(postgres_server_url)
    url = {
        "closed port": "postgresql://u:hunter2hunter2@127.0.0.1:1/db",
        "unknown role": server.set(
            username="nobody_here", password="hunter2hunter2"
        ).render_as_string(hide_password=False),
        "unknown database": server.set(database="taskapi_no_such_db").render_as_string(
            hide_password=False
        ),
        "unknown host": "postgresql://u:hunter2hunter2@no-such-host.invalid/db",
    }[case]
    commands = (
        ("migrate",),
        ("migrate", "--status"),
        ("delete-user", "alice", "--yes"),
        ("expire-sync-tokens", "--yes"),
    )
    with ThreadPoolExecutor() as pool:  # each waits mostly for its interpreter to start
        results = pool.map(lambda args: taskapi(*args, cwd=tmp_path, DATABASE_URL=url), commands)
    for args, result in zip(commands, results, strict=True):
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"taskapi: {args[0]} failed: postgresql://")
        assert says in lines[0]
        assert "hunter2hunter2" not in result.stderr


async def test_migrate_status_shows_current_and_pending_revisions(
    tmp_path: Path, postgres_server_url: str
) -> None:
    url = await create_database(postgres_server_url, prefix="taskapi_cli")
    try:
        empty = taskapi("migrate", "--status", cwd=tmp_path, DATABASE_URL=url)
        assert empty.returncode == 0, empty.stderr
        assert "current: none (empty)" in empty.stdout
        assert "pending: 0001 (Create the tasks table)" in empty.stdout
        taskapi("migrate", "0004", cwd=tmp_path, DATABASE_URL=url)
        partway = taskapi("migrate", "--status", cwd=tmp_path, DATABASE_URL=url).stdout
        assert partway.startswith("current: 0004 ")
        assert [line.split()[1] for line in partway.splitlines() if line.startswith("pending")] == [
            "0005",
            "0006",
            "0007",
            "0008",
            "0009",
            "0010",
            "0011",
            "0012",
        ]
        # Targets that name nothing, or lie the other way, are one line and exit 2, no change.
        for args, says in [
            (("migrate", "bogus"), "no revision 'bogus'"),
            (("migrate", "+1"), "no revision '+1'"),
            (("migrate", "head", "--down"), "no revision 'head'"),
            (("migrate", "0002"), "the database is at 0004, past 0002; to go back"),
            (("migrate", "0006", "--down"), "the database is at 0004, before 0006"),
        ]:
            refused = taskapi(*args, cwd=tmp_path, DATABASE_URL=url)
            assert refused.returncode == 2, refused.stderr
            assert refused.stderr.count("\n") == 1, refused.stderr
            assert says in refused.stderr
        still = taskapi("migrate", "--status", cwd=tmp_path, DATABASE_URL=url).stdout
        assert still.startswith("current: 0004 ")
        taskapi("migrate", cwd=tmp_path, DATABASE_URL=url)
        done = taskapi("migrate", "--status", cwd=tmp_path, DATABASE_URL=url).stdout
        assert "pending: none; the database is up to date" in done
        assert done.splitlines()[0].split()[1] == done.splitlines()[1].split()[1]  # current = head
    finally:
        await drop_database(postgres_server_url, url)


async def test_delete_user_removes_all_of_one_users_rows_and_nothing_else(
    tmp_path: Path, database_url: str, engine: AsyncEngine, clean_tasks: None
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO tasks (user_id, title, completed, created_at, updated_at, version)"
                " SELECT u, 't', false, now(), now(), 1"
                " FROM unnest(ARRAY['alice', 'alice', 'alice', 'bob', 'alice2']) AS u"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)"
                " VALUES ('alice', 'k1', 'f', now()), ('bob', 'k1', 'f', now())"
            )
        )
        await connection.execute(  # a deletion of bob's, remembered by a tombstone
            text(
                "INSERT INTO tasks (user_id, title, completed, created_at, updated_at, version)"
                " VALUES ('bob', 'gone', false, now(), now(), 1)"
            )
        )
        await connection.execute(text("DELETE FROM tasks WHERE title = 'gone'"))
        await connection.execute(  # both stream their changes
            text(
                "INSERT INTO task_watches (user_id, until)"
                " SELECT u, now() + interval '1 minute' FROM unnest(ARRAY['alice', 'bob']) AS u"
                " ON CONFLICT (user_id) DO NOTHING"
            )
        )
        await connection.execute(  # and each holds a stream's place
            text(
                "INSERT INTO task_streams (user_id, stream_id, until) SELECT u,"
                " gen_random_uuid(), now() + interval '1 minute' FROM unnest(ARRAY['alice', 'bob'])"
                " AS u"
            )
        )
    refused = taskapi("delete-user", "alice", cwd=tmp_path, DATABASE_URL=database_url)
    assert refused.returncode == 2
    assert "add --yes" in refused.stderr

    result = taskapi("delete-user", "alice", "--yes", cwd=tmp_path, DATABASE_URL=database_url)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "taskapi: deleted 3 tasks and 1 idempotency keys of alice, in one transaction"
    )
    async with engine.connect() as connection:
        left = await connection.execute(text("SELECT user_id FROM tasks ORDER BY user_id"))
        assert [row.user_id for row in left] == ["alice2", "bob"]
        keys = await connection.execute(text("SELECT user_id FROM idempotency_keys"))
        assert [row.user_id for row in keys] == ["bob"]
        tombstones = await connection.execute(
            text("SELECT user_id, task_id < 0 AS erasure FROM task_tombstones ORDER BY user_id")
        )
        # No trace of alice's deletions: only the erasure's own mark, of no task.
        assert [tuple(row) for row in tombstones] == [("alice", True), ("bob", False)]
        counts = await connection.execute(text("SELECT user_id, tasks FROM task_counts"))
        assert sorted(tuple(row) for row in counts) == [("alice2", 1), ("bob", 1)]
        watches = await connection.execute(text("SELECT user_id FROM task_watches"))
        watched = {row.user_id for row in watches}
        assert "bob" in watched
        assert "alice" not in watched
        places = await connection.execute(text("SELECT user_id FROM task_streams"))
        assert [row.user_id for row in places] == ["bob"]
    # Pooler mode too (a "-pooler" host, or DATABASE_POOLER): the dialect's arguments stay out.
    again = taskapi(
        "delete-user",
        "alice",
        "--yes",
        cwd=tmp_path,
        DATABASE_URL=database_url,
        DATABASE_POOLER="transaction",
    )
    assert "deleted 0 tasks and 0 idempotency keys" in again.stdout, again.stderr


NOW = datetime(2026, 12, 1, tzinfo=UTC)


async def test_delete_user_waits_for_a_write_in_flight_and_leaves_nothing(
    database_url: str, engine: AsyncEngine, clean_tasks: None
) -> None:
    options = DatabaseOptions.from_url(database_url)
    async with operator_connection(options) as writer:
        await writer.fetch(INSERT_TASK.call, "alice", "kept", None, None, 0, [], NOW, None)
        transaction = writer.transaction()
        await transaction.start()
        # A create of alice's in flight: it holds her lock and has inserted, not yet committed.
        await writer.fetch(INSERT_TASK.call, "alice", "in flight", None, None, 0, [], NOW, None)
        erasing = asyncio.create_task(erase_user(options, "alice"))
        await asyncio.sleep(0.5)
        assert not erasing.done()  # it waits for her lock, as any writer would
        await transaction.commit()
        erased = await asyncio.wait_for(erasing, timeout=10)
    assert erased.tasks == 2  # the one in flight too: none survives "delete every task"
    async with engine.connect() as connection:
        left = await connection.execute(text("SELECT count(*) FROM tasks WHERE user_id = 'alice'"))
        assert left.scalar_one() == 0
        counted = await connection.execute(text("SELECT count(*) FROM task_counts"))
        assert counted.scalar_one() == 0


def test_a_reader_that_leaves_early_ends_the_command_quietly(tmp_path: Path) -> None:
    # `taskapi openapi | head -1`: what the reader did not take is dropped, without a traceback.
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    try:
        result = subprocess.run(  # noqa: S603  # our own console script, fixed arguments
            [str(TASKAPI), "openapi"],
            cwd=tmp_path,
            env=clean_env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (1, "")


async def test_expire_sync_tokens_starts_the_feed_past_every_place_and_waits_for_writes(
    tmp_path: Path, database_url: str, engine: AsyncEngine, clean_tasks: None
) -> None:
    refused = taskapi("expire-sync-tokens", cwd=tmp_path, DATABASE_URL=database_url)
    assert refused.returncode == 2
    assert "add --yes" in refused.stderr
    options = DatabaseOptions.from_url(database_url)
    async with operator_connection(options) as writer:
        transaction = writer.transaction()
        await transaction.start()
        # A create in flight holds its place in the feed, not yet committed: a device that synced
        # past the new horizon before it commits would never hear of it, so the command waits.
        await writer.fetch(INSERT_TASK.call, "alice", "in flight", None, None, 0, [], NOW, None)
        expiring = asyncio.create_task(expire_sync_tokens(options))
        await asyncio.sleep(0.5)
        assert not expiring.done()
        await transaction.commit()
        horizon = await asyncio.wait_for(expiring, timeout=10)
        row = await writer.fetchrow(INSERT_TASK.call, "alice", "next", None, None, 0, [], NOW, None)
        assert row is not None
        placed: int = row["change_seq"]
    async with engine.connect() as connection:
        kept = await connection.scalar(text("SELECT starts_after FROM task_change_horizon"))
        in_flight = await connection.scalar(
            text("SELECT change_seq FROM tasks WHERE title = 'in flight'")
        )
    assert kept == horizon
    assert in_flight < horizon < placed
    assert row["id"] > ID_GAP  # ids too start past any the lost stretch handed out
    assert horizon >= datetime.now(UTC).timestamp() * 1_000_000 - 60_000_000  # from the clock

    result = taskapi("expire-sync-tokens", "--yes", cwd=tmp_path, DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    said = re.fullmatch(
        r"taskapi: every sync token from before place (\d+) is now answered 410, "
        r"and task ids skip ahead; start the API .*\n",
        result.stdout,
    )
    assert said is not None, result.stdout
    assert int(said[1]) > placed


async def test_expire_sync_tokens_as_a_role_row_security_binds_says_so_and_changes_nothing(
    tmp_path: Path, database_url: str, engine: AsyncEngine
) -> None:
    role = f"taskapi_bound_operator_{uuid.uuid4().hex[:8]}"  # roles are the server's
    async with engine.begin() as connection:
        await connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        await connection.execute(text(f"CREATE ROLE {role} NOLOGIN NOBYPASSRLS"))
        await connection.execute(
            text(
                "GRANT SELECT, INSERT, UPDATE ON tasks, task_tombstones, task_change_horizon"
                f" TO {role}"
            )
        )
        await connection.execute(
            text(f"GRANT ALL ON SEQUENCE task_change_seq, tasks_id_seq TO {role}")
        )
        before = await connection.scalar(text("SELECT starts_after FROM task_change_horizon"))
    try:
        url = make_url(database_url).update_query_dict({"options": f"-c role={role}"})
        result = taskapi(
            "expire-sync-tokens",
            "--yes",
            cwd=tmp_path,
            DATABASE_URL=url.render_as_string(hide_password=False),
        )
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP OWNED BY {role}"))
            await connection.execute(text(f"DROP ROLE {role}"))
    assert result.returncode == 1
    assert "row-level security" in result.stderr
    assert "BYPASSRLS" in result.stderr
    async with engine.connect() as connection:
        after = await connection.scalar(text("SELECT starts_after FROM task_change_horizon"))
    assert after == before
