"""The dependency-injector container: which adapter implements which port."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator

from dependency_injector import containers, providers
from sqlalchemy.engine import URL

from adapters.clock import SystemClock
from adapters.http.cursor import CursorCodec, SyncTokenCodec
from adapters.http.observability import SampledLog
from adapters.http.rate_limits import RateLimits, TokenBuckets
from adapters.jwt.jose_verifier import JoseTokenVerifier
from adapters.jwt.routing_verifier import AlgorithmRoutingVerifier
from adapters.jwt.rules import JwtRules
from adapters.postgres.database import Database, PoolOptions
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.health import DatabaseHealth
from adapters.postgres.notifications import ChangeListener, ChangePoller
from adapters.postgres.repository import (
    SqlIdempotencyKeyJanitor,
    SqlTaskRepository,
    SqlTombstoneJanitor,
)
from adapters.postgres.streams import SqlStreamSlots
from application.auth import Authenticate, CachedTokenVerifier
from application.events import ChangeHub, EventStreams
from application.ports import TokenVerifier
from application.readiness import RecentReadiness
from application.tasks import (
    CompleteTask,
    CreateTask,
    DeleteTask,
    GetTask,
    ListChanges,
    ListTags,
    ListTasks,
    RecentTasks,
    UpdateTask,
)
from bootstrap.metrics import process_metrics
from bootstrap.settings import ConfigError, Settings


def _pool_options(settings: Settings) -> PoolOptions:
    return PoolOptions(
        size=settings.database_pool_size, acquire_timeout=settings.database_pool_timeout
    )


def _database_options(settings: Settings) -> DatabaseOptions:
    return settings.database()


JWKS_REFETCH_MIN_INTERVAL = 30.0
"""At most one JWKS fetch per this many seconds (an unknown ``kid`` asks for one)."""
JWKS_FETCH_TIMEOUT = 3.0
"""A JWKS fetch that takes longer is abandoned: the request gets a 401, not a wait."""


def _jwt_rules(settings: Settings, algorithms: tuple[str, ...]) -> JwtRules:
    return JwtRules(
        algorithms=algorithms,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway_seconds=settings.jwt_leeway_seconds,
        user_id_claim=settings.jwt_user_id_claim,
    )


def _token_verifier(settings: Settings) -> TokenVerifier:
    """The shared-secret verifier, the JWKS verifier, or both behind the token's ``alg``."""
    verification = settings.token_verification()
    routes: dict[str, TokenVerifier] = {}
    if verification.secret is not None and verification.hmac_algorithms:
        jose = JoseTokenVerifier(
            verification.secret,
            _jwt_rules(settings, verification.hmac_algorithms),
            previous_secrets=verification.previous_secrets,
        )
        routes.update(dict.fromkeys(verification.hmac_algorithms, jose))
    if verification.jwks_url is not None and verification.jwks_algorithms:
        # Imported here: httpx (with its CLI's rich and pygments) adds ~0.15 s to every start-up,
        # and only a JWKS deployment needs it.
        from adapters.jwt.jwks_verifier import JwksTokenVerifier  # noqa: PLC0415

        jwks = JwksTokenVerifier(
            verification.jwks_url,
            _jwt_rules(settings, verification.jwks_algorithms),
            cache_seconds=settings.jwt_jwks_cache_seconds,
            refetch_min_interval=min(JWKS_REFETCH_MIN_INTERVAL, settings.jwt_jwks_cache_seconds),
            fetch_timeout=JWKS_FETCH_TIMEOUT,
        )
        routes.update(dict.fromkeys(verification.jwks_algorithms, jwks))
    verifiers = set(map(id, routes.values()))
    if len(verifiers) == 1:
        return next(iter(routes.values()))
    return AlgorithmRoutingVerifier(routes)


CURSOR_KEY_LABEL = b"taskapi/cursor/v1"
CURSOR_KEY_FROM_DATABASE_URL_LABEL = b"taskapi/cursor/v1/from-database-url"


def _has_password(url: URL) -> bool:
    return bool(url.password or url.query.get("password"))


def _cursor_keys(settings: Settings) -> tuple[bytes, ...]:
    """The keys of page cursors and sync tokens: the same in every replica, never a signing key.

    The first seals: from ``CURSOR_SECRET`` if set, else from ``JWT_SECRET``, else from the full
    ``DATABASE_URL`` (which holds the database password, and which every replica of one
    deployment shares). The secrets that source lists as previous (``CURSOR_PREVIOUS_SECRETS``,
    or ``JWT_PREVIOUS_SECRETS`` while the key follows ``JWT_SECRET``) still open what they sealed,
    so that tokens clients keep survive a rotation, until the operator drops them.
    """
    cursor_previous = [item.get_secret_value() for item in settings.cursor_previous_secrets]
    if settings.cursor_secret is not None:
        current, previous = settings.cursor_secret.get_secret_value(), cursor_previous
    elif cursor_previous:
        raise ConfigError(
            "CURSOR_PREVIOUS_SECRETS: set, but there is no CURSOR_SECRET they precede"
        )
    elif settings.jwt_secret is not None:
        current = settings.jwt_secret.get_secret_value()
        previous = [item.get_secret_value() for item in settings.jwt_previous_secrets]
    elif settings.database_url is not None and _has_password(settings.database().url):
        url = settings.database_url.get_secret_value().encode()
        return (hmac.new(url, CURSOR_KEY_FROM_DATABASE_URL_LABEL, hashlib.sha256).digest(),)
    else:
        # A URL without a password (trust, peer or certificate authentication) is no secret:
        # anyone who guessed it could read and forge cursors.
        raise ConfigError(
            "CURSOR_SECRET: not set, and there is no JWT_SECRET nor a password in DATABASE_URL "
            "to derive it from: set CURSOR_SECRET (at least 32 bytes, the same in every replica)"
        )
    keys = (
        hmac.new(item.encode(), CURSOR_KEY_LABEL, hashlib.sha256).digest()
        for item in [current, *previous]
    )
    return tuple(dict.fromkeys(keys))  # the sealing key first, each key once


def _rate_limits(settings: Settings) -> RateLimits:
    return RateLimits(
        per_user=TokenBuckets("user", settings.rate_limit_user_rps, settings.rate_limit_user_burst),
        per_address=TokenBuckets(
            "address", settings.rate_limit_ip_rps, settings.rate_limit_ip_burst
        ),
    )


def _change_source(
    settings: Settings, database: Database, hub: ChangeHub
) -> ChangeListener | ChangePoller:
    """LISTEN where a direct connection exists (polling while it cannot), else poll."""
    listening = settings.listening_database()
    poller = ChangePoller(database, hub)
    return poller if listening is None else ChangeListener(listening, hub, fallback=poller)


async def _run_database(database: Database) -> AsyncIterator[Database]:
    """The pool's life: opened when the app starts, closed when it stops."""
    await database.start()
    try:
        yield database
    finally:
        await database.close()


class Container(containers.DeclarativeContainer):
    """Wires the adapters to the ports for one process.

    Everything is a Singleton built once: none holds per-request state (each repository call
    takes a pooled connection for itself), so nothing is constructed on the request path. The
    HTTP adapter takes ``authenticate``, the use cases, ``cursors`` and ``readiness`` by name;
    tests override ``repository``, ``token_verifier`` or ``clock`` with fakes.
    """

    settings = providers.Dependency(instance_of=Settings)

    database = providers.Singleton(
        Database,
        providers.Callable(_database_options, settings),
        providers.Callable(_pool_options, settings),
    )
    database_pool = providers.Resource(_run_database, database)
    clock = providers.Singleton(SystemClock)
    repository = providers.Singleton(SqlTaskRepository, database=database)
    idempotency_janitor = providers.Singleton(SqlIdempotencyKeyJanitor, database=database)
    tombstone_janitor = providers.Singleton(SqlTombstoneJanitor, database=database)
    metrics = providers.Singleton(process_metrics, database)
    readiness = providers.Singleton(
        RecentReadiness, inner=providers.Singleton(DatabaseHealth, database=database), clock=clock
    )
    token_verifier = providers.Singleton(
        CachedTokenVerifier, inner=providers.Singleton(_token_verifier, settings), clock=clock
    )
    cursors = providers.Singleton(CursorCodec, providers.Callable(_cursor_keys, settings))
    sync_tokens = providers.Singleton(SyncTokenCodec, providers.Callable(_cursor_keys, settings))
    change_hub = providers.Singleton(ChangeHub)
    stream_slots = providers.Singleton(SqlStreamSlots, database=database)
    event_streams = providers.Singleton(EventStreams, hub=change_hub, slots=stream_slots)
    change_source = providers.Singleton(_change_source, settings, database, change_hub)
    rate_limits = providers.Singleton(_rate_limits, settings)
    security_log = providers.Singleton(
        SampledLog,
        logging.getLogger("taskapi.security"),
        per_second=settings.provided.security_log_max_per_second,
    )

    authenticate = providers.Singleton(Authenticate, verifier=token_verifier)
    list_tasks = providers.Singleton(ListTasks, repository=repository)
    list_tags = providers.Singleton(ListTags, repository=repository)
    list_changes = providers.Singleton(ListChanges, repository=repository, clock=clock)
    create_task = providers.Singleton(
        CreateTask,
        repository=repository,
        clock=clock,
        max_tasks=settings.provided.tasks_per_user_max,
    )
    recent_tasks = providers.Singleton(RecentTasks)
    get_task = providers.Singleton(GetTask, repository=repository, recent_tasks=recent_tasks)
    update_task = providers.Singleton(
        UpdateTask, repository=repository, clock=clock, recent_tasks=recent_tasks
    )
    complete_task = providers.Singleton(
        CompleteTask, repository=repository, clock=clock, recent_tasks=recent_tasks
    )
    delete_task = providers.Singleton(DeleteTask, repository=repository, recent_tasks=recent_tasks)
