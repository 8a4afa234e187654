"""Builds the FastAPI application around the services bootstrap hands in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from adapters.http.problems import install_problem_handlers, problem
from adapters.http.routes import HttpServices, router, services
from adapters.http.schemas import TaskCreate, TaskUpdate

_EXPOSED_HEADERS = ["ETag", "Location", "Link", "X-Total-Count", "X-Request-ID"]


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """OpenAPI with the hand-parsed request bodies' schemas added to the components."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (TaskCreate, TaskUpdate):
                components[model.__name__] = model.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def build_app(
    http_services: HttpServices,
    *,
    cors_origins: Sequence[str] = (),
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """The ASGI application: routes, error mapping and middleware, wired to ``http_services``."""
    app = FastAPI(
        title="Task API",
        version="1.0.0",
        description="Each user's tasks, strictly their own. Authenticate with a bearer JWT.",
        lifespan=lifespan,
    )
    app.state.services = http_services
    app.include_router(router)
    install_problem_handlers(app)

    @app.get("/healthz", tags=["service"], summary="Liveness: the process runs")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["service"],
        summary="Readiness: the database answers",
        responses={503: {"description": "The database does not answer"}},
    )
    async def readyz(request: Request) -> Response:
        if await services(request).database_ready():
            return Response(b'{"status":"ready"}', media_type="application/json")
        return problem(
            503,
            "database_unavailable",
            "The database does not answer.",
            headers={"Retry-After": "2"},
        )

    app.openapi = _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented override
    # Outermost last: request id first, so every later layer (and its logs) sees it.
    app.add_middleware(BodySizeLimitMiddleware)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=_EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware)
    return app
