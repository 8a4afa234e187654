"""Builds the FastAPI application around the services bootstrap hands in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from adapters.http.context import stamp_log_records_with_request_id
from adapters.http.middleware import BodySizeLimitMiddleware, RequestEdgeMiddleware
from adapters.http.observability import HttpMetrics
from adapters.http.openapi import openapi_builder, problems
from adapters.http.problems import RETRY_AFTER_SECONDS, install_problem_handlers, problem
from adapters.http.routes import HttpServices, register_routes, services
from adapters.http.schemas import TaskCreate, TaskUpdate

_EXPOSED_HEADERS = ["ETag", "Location", "Link", "X-Total-Count", "X-Request-ID"]


def build_app(
    http_services: HttpServices,
    *,
    cors_origins: Sequence[str] = (),
    registry: CollectorRegistry | None = None,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """The ASGI application: routes, error mapping and middleware, wired to ``http_services``."""
    app = FastAPI(
        title="Task API",
        version="1.0.0",
        description="Each user's tasks, strictly their own. Authenticate with a bearer JWT.",
        lifespan=lifespan,
        # "/tasks/" is no route: a 404, not a redirect built from the client's Host header.
        redirect_slashes=False,
        # Metrics are Prometheus' (/metrics); FastAPI's OpenTelemetry hooks would only cost a
        # provider lookup per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    stamp_log_records_with_request_id()
    app.state.services = http_services
    registry = registry or CollectorRegistry()
    metrics = HttpMetrics(registry)
    register_routes(app)
    install_problem_handlers(app)

    @app.get("/healthz", tags=["service"], summary="Liveness: the process runs")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["service"],
        summary="Readiness: the database answers",
        responses={503: problems()[503]},
    )
    async def readyz(request: Request) -> Response:
        if await services(request).database.is_ready():
            return Response(b'{"status":"ready"}', media_type="application/json")
        return problem(
            503,
            "database_unavailable",
            "The database does not answer.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics: requests and latency by route and status, pool use",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.openapi = openapi_builder(app, (TaskCreate, TaskUpdate))  # type: ignore[method-assign]  # FastAPI's documented override
    # Added innermost first. The edge is outermost, so every later layer (and its logs) sees the
    # request id; the body limit is inside CORS, so a 413 carries CORS headers.
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
    app.add_middleware(RequestEdgeMiddleware, metrics=metrics)
    return app
