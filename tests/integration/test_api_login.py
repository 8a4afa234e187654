"""``taskapi create-login``: a login that serves the API and can do nothing else.

On a real PostgreSQL, as the test server's owner role creates it: the login works the repository
(through ``taskapi_app``), and on its own, reset out of that role, it sees no task, reads no
migration state, and drops or alters nothing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from adapters.postgres import logins
from adapters.postgres.database import Database
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.logins import LoginRoleError, create_api_login
from adapters.postgres.repository import SqlTaskRepository
from domain.task import NewTask, UserId

pytestmark = pytest.mark.usefixtures("clean_tasks")
PASSWORD = "a-long-enough-login-password-0123"


@pytest.fixture
async def login(direct_database_url: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh login role; yields its name and a URL that logs in as it."""
    name = f"taskapi_login_{secrets.token_hex(4)}"
    options = DatabaseOptions.from_url(direct_database_url)
    assert await create_api_login(options, name, PASSWORD) is True
    url = make_url(direct_database_url).set(username=name, password=PASSWORD)
    yield name, url.render_as_string(hide_password=False)
    owner = await _connect(direct_database_url)
    try:
        await owner.execute(f'DROP OWNED BY "{name}"; DROP ROLE "{name}"')
    finally:
        await owner.close()


async def _connect(url: str) -> asyncpg.Connection:
    options = DatabaseOptions.from_url(url)
    dsn = options.url.set(drivername="postgresql").render_as_string(hide_password=False)
    connection: asyncpg.Connection = await asyncpg.connect(dsn)
    return connection


async def test_the_login_serves_the_api(login: tuple[str, str]) -> None:
    _, url = login
    database = Database(DatabaseOptions.from_url(url))
    await database.start()
    try:
        repository = SqlTaskRepository(database)
        now = datetime.now(UTC)
        created = await repository.add(NewTask.create(owner=UserId("alice"), title="t"), at=now)
        assert await repository.get(UserId("alice"), created.task.id) == created.task
    finally:
        await database.close()


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("SELECT * FROM alembic_version", asyncpg.InsufficientPrivilegeError),
        ("DROP TABLE tasks", asyncpg.InsufficientPrivilegeError),
        ("ALTER TABLE tasks DISABLE ROW LEVEL SECURITY", asyncpg.InsufficientPrivilegeError),
        ("TRUNCATE tasks", asyncpg.InsufficientPrivilegeError),
        ("CREATE ROLE sneaky", asyncpg.InsufficientPrivilegeError),
        ("DROP FUNCTION taskapi_get_task(text, bigint)", asyncpg.InsufficientPrivilegeError),
    ],
)
async def test_reset_to_itself_the_login_may_change_nothing(
    login: tuple[str, str], direct_database_url: str, statement: str, refusal: type[Exception]
) -> None:
    _, url = login
    connection = await _connect(url)
    try:
        await connection.execute("RESET ROLE")
        with pytest.raises(refusal):
            await connection.execute(statement)
    finally:
        await connection.close()


async def test_reset_to_itself_the_login_sees_no_task_and_cannot_become_the_owner(
    login: tuple[str, str], direct_database_url: str
) -> None:
    _, url = login
    database = Database(DatabaseOptions.from_url(url))
    await database.start()
    try:
        await SqlTaskRepository(database).add(
            NewTask.create(owner=UserId("bob"), title="bob's"), at=datetime.now(UTC)
        )
    finally:
        await database.close()
    owner_name = make_url(direct_database_url).username
    connection = await _connect(url)
    try:
        await connection.execute("RESET ROLE")
        assert await connection.fetchval("SELECT count(*) FROM tasks") == 0
        assert await connection.execute("UPDATE tasks SET title = 'mine'") == "UPDATE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute(f'SET ROLE "{owner_name}"')
    finally:
        await connection.close()
    owner = await _connect(direct_database_url)
    try:
        assert await owner.fetchval("SELECT title FROM tasks") == "bob's"
    finally:
        await owner.close()


async def test_creating_it_again_updates_it(
    login: tuple[str, str], direct_database_url: str
) -> None:
    name, _ = login
    options = DatabaseOptions.from_url(direct_database_url)
    assert await create_api_login(options, name, PASSWORD + "-rotated") is False


async def test_the_password_is_sent_as_a_scram_verifier_never_in_plain_text(
    login: tuple[str, str], direct_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the salt fixed, the server holds exactly the verifier computed here: had the plain
    # password been sent, PostgreSQL would have salted it itself.
    name, _ = login
    salt = bytes(range(16))
    monkeypatch.setattr("adapters.postgres.logins.secrets.token_bytes", lambda size: salt[:size])
    await create_api_login(DatabaseOptions.from_url(direct_database_url), name, PASSWORD)
    owner = await _connect(direct_database_url)
    try:
        stored = await owner.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", name)
    finally:
        await owner.close()
    assert stored == logins.scram_verifier(PASSWORD, salt)


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("taskapi_app", PASSWORD),
        ("Robert'); DROP TABLE tasks;--", PASSWORD),
        ("1starts_with_a_digit", PASSWORD),
        ("ok_name", "short"),
        ("ok_name", "long enough but not ascii: é"),
    ],
)
async def test_bad_names_and_short_passwords_are_refused(
    direct_database_url: str, name: str, password: str
) -> None:
    with pytest.raises(LoginRoleError):
        await create_api_login(DatabaseOptions.from_url(direct_database_url), name, password)


@pytest.mark.parametrize(
    ("grant", "refusal"),
    [
        ("ALTER ROLE {name} CREATEDB", "CREATEDB"),
        ("GRANT pg_write_all_data TO {name}", "member of pg_write_all_data"),
        ("CREATE TABLE {name}_own (x int); ALTER TABLE {name}_own OWNER TO {name}", "owns"),
        ("GRANT INSERT, UPDATE ON alembic_version TO {name}", "granted rights"),
        ("ALTER ROLE {name} REPLICATION", "REPLICATION"),
    ],
)
async def test_an_existing_role_with_rights_of_its_own_is_not_turned_into_the_login(
    direct_database_url: str, grant: str, refusal: str
) -> None:
    # It could write the tables, or the migrations' state, around row-level security.
    name = f"taskapi_other_{secrets.token_hex(4)}"
    owner = await _connect(direct_database_url)
    try:
        await owner.execute(f'CREATE ROLE "{name}"')
        await owner.execute(grant.format(name=name))
        with pytest.raises(LoginRoleError, match=refusal):
            await create_api_login(DatabaseOptions.from_url(direct_database_url), name, PASSWORD)
        assert (
            await owner.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", name)
            is False
        )
    finally:
        await owner.execute(f'DROP OWNED BY "{name}"; DROP ROLE "{name}"')
        await owner.close()


def test_the_command_creates_it_and_says_so_in_one_line(
    direct_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bootstrap.cli import main  # noqa: PLC0415  # the command under test

    name = f"taskapi_cli_{secrets.token_hex(4)}"
    monkeypatch.setenv("DATABASE_URL", direct_database_url)
    monkeypatch.setenv("TASKAPI_LOGIN_PASSWORD", PASSWORD)
    try:
        assert main(["create-login", name]) == 0
        out = capsys.readouterr().out
        assert out == f"taskapi: login role {name} created; member of taskapi_app\n"
        assert PASSWORD not in out
        # Set but empty is not a password: one is made and shown, as when it is not set.
        monkeypatch.setenv("TASKAPI_LOGIN_PASSWORD", "")
        assert main(["create-login", name]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == f"taskapi: login role {name} updated; member of taskapi_app"
        assert lines[1].startswith("taskapi: its password (shown once): ")
        assert len(lines[1].split(": ", 2)[2]) >= 32
        assert main(["create-login", "taskapi_app"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("taskapi: configuration error: create-login taskapi_app:")
        assert err.count("\n") == 1
    finally:

        async def drop() -> None:
            owner = await _connect(direct_database_url)
            try:
                await owner.execute(f'DROP ROLE IF EXISTS "{name}"')
            finally:
                await owner.close()

        asyncio.run(drop())
