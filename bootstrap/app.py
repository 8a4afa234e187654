"""``create_app()``: the application factory that uvicorn (and the tests) call."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Final

from fastapi import FastAPI

from adapters.http.app import build_app
from adapters.http.server import SERVER_STOPPING
from adapters.postgres.engine import DatabaseOptions
from application.errors import StorageUnavailable
from application.ports import Clock
from bootstrap.container import Container
from bootstrap.metrics import keep_worker_metrics
from bootstrap.settings import Settings, load_settings

log = logging.getLogger("taskapi")
PURGE_INTERVAL_SECONDS: Final = 600.0
GC_THRESHOLDS: Final = (10_000, 20, 20)


def create_container(settings: Settings) -> Container:
    """A container for these settings; providers are built lazily, on first use."""
    return Container(settings=settings)


Purge = Callable[[datetime], Awaitable[int]]


async def purge_expired_forever(
    purges: Sequence[tuple[str, Purge]],
    clock: Clock,
    busy: Callable[[], bool],
    interval: float = PURGE_INTERVAL_SECONDS,
) -> None:
    """Delete expired rows (idempotency keys, tombstones) every ``interval`` s, in every replica.

    Expired keys are already ignored when a request comes, and a purged tombstone only turns
    older sync tokens into 410s; this keeps the tables small. Several replicas purging the same
    rows is harmless. Skipped while ``busy()`` is false (no connection open: no request for
    minutes), so that an idle service lets a scale-to-zero database suspend.
    """
    while True:
        await asyncio.sleep(interval)
        if not busy():
            continue
        for what, purge in purges:
            try:
                purged = await purge(clock.now())
            except (StorageUnavailable, OSError, TimeoutError) as error:
                log.warning("%s purge skipped", what, extra={"error": type(error).__name__})
            except Exception:  # a failed purge must never stop the API
                log.exception("%s purge failed", what)
            else:
                if purged:
                    log.info("%s purged", what, extra={"count": purged})


def _warn_if_unencrypted(settings: Settings) -> None:
    """A warning for each database URL that asks for no encryption to another machine."""
    if settings.database_url is None:
        return
    urls: list[tuple[str, DatabaseOptions | None]] = [("DATABASE_URL", settings.database())]
    if settings.database_direct_url is not None:
        urls.append(("DATABASE_DIRECT_URL", settings.listening_database()))
    for variable, options in urls:
        if options is not None and options.unencrypted_remote:
            log.warning(
                "%s asks for no encryption to a remote host: its password and every task "
                "cross the network in clear (use sslmode=verify-full)",
                variable,
                extra={"variable": variable, "url": options.redacted()},
            )


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """Build the API. Connects to nothing until it starts; never migrates.

    ``container`` lets a test hand in one whose providers it has overridden.
    """
    settings = settings or load_settings()
    container = container or create_container(settings)
    # Resolved now, so that bad configuration stops start-up instead of failing a request.
    container.authenticate()
    container.cursors()
    _warn_if_unencrypted(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Callable[[], None]]]:
        await container.init_resources()  # type: ignore[misc]  # awaitable: the pool is async
        # Everything built so far (modules, routes, schemas: ~100k objects) lives as long as the
        # process. Moving it out of the collector's reach keeps full collections short, which
        # measured, is what keeps p95 latency under load close to a lean server's; and a request
        # allocates hundreds of short-lived containers, so the youngest generation is collected
        # every 10,000 allocations rather than every 700 (see benchmarks/README.md).
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        purges = (
            ("idempotency keys", container.idempotency_janitor().purge),
            ("tombstones", container.tombstone_janitor().purge),
        )
        purger = asyncio.create_task(
            purge_expired_forever(purges, container.clock(), container.database().in_use)
        )
        signals = asyncio.create_task(container.change_source().run())
        leases = asyncio.create_task(container.event_streams().keep_forever())
        metrics = asyncio.create_task(keep_worker_metrics(container.metrics()))
        try:
            yield {SERVER_STOPPING: container.change_hub().close}
        finally:
            container.change_hub().close()
            for task in (purger, signals, leases, metrics):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await container.shutdown_resources()  # type: ignore[misc]  # as above

    return build_app(
        container,
        cors_origins=settings.cors_origins,
        registry=container.metrics().served,
        metrics_registry=container.metrics().recorded,
        metrics_token=(
            None if settings.metrics_token is None else settings.metrics_token.get_secret_value()
        ),
        docs_enabled=settings.docs_enabled,
        lifespan=lifespan,
    )
