"""Database URLs as Neon and others hand them out, translated for asyncpg."""

from __future__ import annotations

import ssl

import pytest
from sqlalchemy import text

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
    ],
)
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(DatabaseUrlError):
        DatabaseOptions.from_url(url)


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
