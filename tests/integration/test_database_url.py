"""Database URLs as Neon and others hand them out, translated for asyncpg."""

from __future__ import annotations

import ssl

import pytest
from sqlalchemy import make_url, text

from adapters.postgres.engine import DatabaseOptions, DatabaseUrlError, create_unpooled_engine

NEON = (
    "postgresql://neondb_owner:npg_secret@ep-cool-darkness-123456.eu-central-1.aws.neon.tech"
    "/neondb?sslmode=require&channel_binding=require"
)
NEON_POOLED = NEON.replace("123456.", "123456-pooler.")


def test_a_neon_url_becomes_asyncpg_arguments() -> None:
    options = DatabaseOptions.from_url(NEON)
    assert options.url.drivername == "postgresql+asyncpg"
    assert dict(options.url.query) == {}
    assert options.url.database == "neondb"
    context = options.connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    # channel_binding=require: the certificate is checked fully, hostname included.
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert options.transaction_pooler is False
    assert "npg_secret" not in options.redacted()


def test_require_alone_keeps_libpqs_meaning_encrypted_not_verified() -> None:
    options = DatabaseOptions.from_url(NEON.replace("&channel_binding=require", ""))
    context = options.connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_channel_binding_without_tls_is_refused(mode: str) -> None:
    with pytest.raises(DatabaseUrlError, match="channel_binding=require needs TLS"):
        DatabaseOptions.from_url(f"postgresql://u@h/db?sslmode={mode}&channel_binding=require")


def test_a_pooled_neon_host_turns_off_prepared_statement_caches() -> None:
    options = DatabaseOptions.from_url(NEON_POOLED)
    assert options.transaction_pooler is True
    assert options.connect_args["statement_cache_size"] == 0
    assert options.connect_args["prepared_statement_cache_size"] == 0
    name = options.connect_args["prepared_statement_name_func"]
    assert name() != name()


def test_pooler_mode_can_be_forced_either_way() -> None:
    assert DatabaseOptions.from_url(NEON, pooler=True).transaction_pooler is True
    assert DatabaseOptions.from_url(NEON_POOLED, pooler=False).transaction_pooler is False


def test_verify_full_checks_the_hostname() -> None:
    options = DatabaseOptions.from_url("postgresql://u@h/db?sslmode=verify-full")
    context = options.connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("mode", ["", "sslmode=verify-full&"])
def test_sslrootcert_system_is_the_system_trust_store_and_verify_full(mode: str) -> None:
    options = DatabaseOptions.from_url(f"postgresql://u@h/db?{mode}sslrootcert=system")
    context = options.connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED
    # The system's roots, not a file named "system".
    assert context.cert_store_stats() == ssl.create_default_context().cert_store_stats()


@pytest.mark.parametrize("mode", ["disable", "prefer", "require", "verify-ca"])
def test_sslrootcert_system_refuses_a_weaker_sslmode_as_libpq_does(mode: str) -> None:
    with pytest.raises(DatabaseUrlError, match="sslrootcert=system needs sslmode=verify-full"):
        DatabaseOptions.from_url(f"postgresql://u@h/db?sslmode={mode}&sslrootcert=system")


def test_neon_endpoint_options_become_server_settings() -> None:
    options = DatabaseOptions.from_url(
        "postgres://u:p@h/db?options=endpoint%3Dep-x&application_name=taskapi&connect_timeout=7"
    )
    assert options.connect_args["server_settings"] == {
        "options": "endpoint=ep-x",
        "application_name": "taskapi",
    }
    assert options.connect_args["timeout"] == 7.0


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@h/db",
        "mssql://u@h/db",
        "not a url",
        "postgresql://u@h/db?sslmode=sometimes",
        "postgresql://u@h/db?connect_timeout=soon",
        "postgresql://u@h/db?sslmode=require&sslmode=disable",
        "postgresql://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
        "postgresql://u@h/db?sslmode=verify-ca&sslrootcert=/etc/hostname",  # not a certificate
    ],
)
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(DatabaseUrlError) as refused:
        DatabaseOptions.from_url(url)
    assert "Traceback" not in str(refused.value)


def test_other_parameters_are_server_settings_as_asyncpg_reads_a_dsn() -> None:
    options = DatabaseOptions.from_url(
        "postgresql://u:p@h/db?search_path=app&TimeZone=UTC&dbname=tasks&krbsrvname=pg"
    )
    assert options.connect_args["server_settings"] == {"search_path": "app", "TimeZone": "UTC"}
    assert options.url.database == "tasks"
    assert dict(options.url.query) == {"krbsrvname": "pg"}


async def test_a_url_with_settings_and_dbname_connects_for_migrate(database_url: str) -> None:
    # The migrations' engine passes what stays in the query to asyncpg.connect as keywords.
    url = make_url(database_url)
    without = url.set(database=None).render_as_string(hide_password=False)
    separator = "&" if "?" in without else "?"
    given = f"{without}{separator}dbname={url.database}&TimeZone=UTC&application_name=t"
    engine = create_unpooled_engine(DatabaseOptions.from_url(given))
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SHOW TimeZone"))).scalar_one() == "UTC"
    finally:
        await engine.dispose()


def test_libpq_parameters_asyncpg_has_no_use_for_are_left_out() -> None:
    url = (
        "postgresql://u:p@h/db?keepalives=1&keepalives_idle=30&sslnegotiation=direct"
        "&tcp_user_timeout=1000&sslmode=require&target_session_attrs=read-write"
    )
    assert dict(DatabaseOptions.from_url(url).url.query) == {}


@pytest.mark.parametrize("timeout", ["0", "-1"])
def test_a_connect_timeout_of_no_limit_is_the_configured_wait(timeout: str) -> None:
    # libpq's 0 is "wait forever": a service waits DATABASE_CONNECT_TIMEOUT instead.
    url = f"postgresql://u@h/db?connect_timeout={timeout}"
    assert DatabaseOptions.from_url(url, connect_timeout=3.0).connect_args["timeout"] == 3.0


def test_a_password_in_the_query_is_not_shown() -> None:
    options = DatabaseOptions.from_url("postgresql://u@h:5432/db?password=hunter2secret")
    assert "hunter2secret" not in options.redacted()
    assert options.redacted() == "postgresql://u@h:5432/db?password=***"


@pytest.mark.parametrize(
    ("url", "unencrypted"),
    [
        ("postgresql://u:p@db.example.com/db?sslmode=disable", True),
        ("postgresql://u:p@db.example.com/db?sslmode=allow", True),
        ("postgresql://u:p@localhost/db?host=db.example.com&sslmode=disable", True),
        ("postgresql://u:p@db.example.com/db?sslmode=require", False),
        ("postgresql://u:p@db.example.com/db", False),  # asyncpg tries TLS first
        ("postgresql://u:p@127.0.0.1/db?sslmode=disable", False),
        ("postgresql://u:p@localhost/db?sslmode=disable", False),
        ("postgresql://u:p@[::1]/db?sslmode=disable", False),
        ("postgresql://u@/db?host=/run/postgresql&sslmode=disable", False),
    ],
)
def test_no_encryption_to_another_machine_is_told_apart(url: str, unencrypted: bool) -> None:
    assert DatabaseOptions.from_url(url).unencrypted_remote is unencrypted


@pytest.mark.parametrize("suffix", ["", "?sslmode=disable", "?sslmode=prefer"])
async def test_the_translated_url_connects(database_url: str, suffix: str) -> None:
    # The suite's server is local (TCP or unix socket); these modes work without TLS.
    separator = "&" if "?" in database_url and suffix else ""
    url = database_url + (suffix.replace("?", separator) if separator else suffix)
    engine = create_unpooled_engine(DatabaseOptions.from_url(url))
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_postgresql_asyncpg_url_is_taken_as_is(database_url: str) -> None:
    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_unpooled_engine(DatabaseOptions.from_url(url))
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


def test_no_encryption_to_another_machine_is_a_warning_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bootstrap.app import create_app  # noqa: PLC0415  # builds the app, connects to nothing
    from bootstrap.settings import Settings  # noqa: PLC0415

    remote = "postgresql://u:hunter2hunter2@db.example.com/db?sslmode=disable"
    for url, warned in ((remote, True), (remote.replace("disable", "require"), False)):
        caplog.clear()
        create_app(Settings(_env_file=None, database_url=url, jwt_secret="s" * 32))
        lines = [r for r in caplog.records if r.levelname == "WARNING"]
        assert bool(lines) is warned
        for line in lines:
            assert "DATABASE_URL asks for no encryption" in line.getMessage()
            assert "hunter2hunter2" not in line.getMessage() + str(line.__dict__)
