"""``create_app()``: the application factory that uvicorn (and the tests) call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adapters.http.app import build_app
from bootstrap.container import Container
from bootstrap.settings import Settings, load_settings


def create_container(settings: Settings) -> Container:
    """A container for these settings; providers are built lazily, on first use."""
    return Container(settings=settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API. Connects to nothing until the first request; never migrates."""
    settings = settings or load_settings()
    container = create_container(settings)
    # Built now, so that bad configuration stops start-up instead of failing the first request.
    http_services = container.http_services()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await container.engine().dispose()

    app = build_app(http_services, cors_origins=settings.cors_origins, lifespan=lifespan)
    app.state.container = container
    return app
