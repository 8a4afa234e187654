"""The dependency-injector container: which adapter implements which port.

Everything is a Singleton built once per process: the database pool, the repository, the
verifier and the use cases hold no per-request state (each repository call opens its own
transaction), so no provider is ever constructed on the request path.
"""

from __future__ import annotations

import hashlib
import hmac

from dependency_injector import containers, providers
from prometheus_client import CollectorRegistry

from adapters.clock import SystemClock
from adapters.http.cursor import CursorCodec
from adapters.http.routes import HttpServices
from adapters.jwt.jose_verifier import HMAC_ALGORITHMS, JoseTokenVerifier, JwtRules
from adapters.postgres.database import Database, PoolOptions
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.health import DatabaseHealth
from adapters.postgres.metrics import PoolCollector
from adapters.postgres.repository import SqlIdempotencyKeyJanitor, SqlTaskRepository
from application.auth import Authenticate, CachedTokenVerifier
from application.tasks import CompleteTask, CreateTask, DeleteTask, GetTask, ListTasks, UpdateTask
from bootstrap.settings import Settings


def _pool_options(settings: Settings) -> PoolOptions:
    return PoolOptions(
        size=settings.database_pool_size, acquire_timeout=settings.database_pool_timeout
    )


def _database_options(settings: Settings) -> DatabaseOptions:
    return settings.database()


def _jwt_rules(settings: Settings) -> JwtRules:
    return JwtRules(
        algorithms=tuple(name for name in settings.jwt_algorithms if name in HMAC_ALGORITHMS),
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway_seconds=settings.jwt_leeway_seconds,
        user_id_claim=settings.jwt_user_id_claim,
    )


def _shared_secret(settings: Settings) -> str:
    return settings.shared_secret()


def _cursor_key(settings: Settings) -> bytes:
    # Derived from the shared secret, so every replica signs and checks the same cursors, and
    # a cursor's MAC can never be mistaken for a token signature.
    return hmac.new(
        settings.shared_secret().encode(), b"taskapi/cursor/v1", hashlib.sha256
    ).digest()


def _registry(database: Database) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PoolCollector(database))
    return registry


class Container(containers.DeclarativeContainer):
    """Wires the adapters to the ports for one process."""

    settings = providers.Dependency(instance_of=Settings)

    database = providers.Singleton(
        Database,
        providers.Callable(_database_options, settings),
        providers.Callable(_pool_options, settings),
    )
    clock = providers.Singleton(SystemClock)
    repository = providers.Singleton(SqlTaskRepository, database=database)
    idempotency_janitor = providers.Singleton(SqlIdempotencyKeyJanitor, database=database)
    metrics_registry = providers.Singleton(_registry, database)
    database_health = providers.Singleton(DatabaseHealth, database=database)
    token_verifier = providers.Singleton(
        CachedTokenVerifier,
        inner=providers.Singleton(
            JoseTokenVerifier,
            secret=providers.Callable(_shared_secret, settings),
            rules=providers.Callable(_jwt_rules, settings),
        ),
        clock=clock,
    )

    http_services = providers.Singleton(
        HttpServices,
        authenticate=providers.Singleton(Authenticate, verifier=token_verifier),
        list_tasks=providers.Singleton(ListTasks, repository=repository),
        create_task=providers.Singleton(CreateTask, repository=repository, clock=clock),
        get_task=providers.Singleton(GetTask, repository=repository),
        update_task=providers.Singleton(UpdateTask, repository=repository, clock=clock),
        complete_task=providers.Singleton(CompleteTask, repository=repository, clock=clock),
        delete_task=providers.Singleton(DeleteTask, repository=repository),
        database_ready=database_health.provided.is_ready,
        cursors=providers.Singleton(CursorCodec, providers.Callable(_cursor_key, settings)),
    )
