"""Builds the FastAPI application around the container bootstrap hands in."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated, Final

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.responses import Response
from starlette.types import Lifespan
from swagger_ui_bundle import swagger_ui_path

from adapters.http.context import stamp_log_records_with_request_id
from adapters.http.dependencies import provided
from adapters.http.events import events_router
from adapters.http.middleware import (
    BodySizeLimitMiddleware,
    InternalErrorMiddleware,
    ProblemCORSMiddleware,
    RequestEdgeMiddleware,
)
from adapters.http.observability import HttpMetrics
from adapters.http.openapi import openapi_builder, problems
from adapters.http.problem_pages import problem_pages
from adapters.http.problems import (
    RETRY_AFTER_SECONDS,
    install_problem_handlers,
    log_security_event,
    problem,
)
from adapters.http.routes import answer_head, router, tags_router
from adapters.http.schemas import JSON, Liveness, ProblemCode, Readiness
from application.ports import HealthProbe

_EXPOSED_HEADERS: Final = [
    "ETag",
    "Location",
    "Link",
    "X-Total-Count",
    "X-Request-ID",
    "Idempotent-Replayed",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
]
_TAGS: Final = [
    {"name": "tasks", "description": "A user's own tasks; the bearer token names the user"},
    {"name": "service", "description": "Probes and metrics for operators; no token"},
]


def _is_bearer(request: Request, token: str) -> bool:
    given = request.headers.get("authorization", "").encode()
    return hmac.compare_digest(given, f"Bearer {token}".encode())


def _serve_docs(app: FastAPI) -> None:
    """``/openapi.json``, and Swagger UI at ``/docs`` with assets from the package that ships them.

    FastAPI's documented way to self-host them: the page works offline, and loads no script
    from a CDN without an integrity check onto a page where users paste tokens.
    """
    assets = "/docs/assets"

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    app.mount(assets, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
            oauth2_redirect_url=None,
        )


def build_app(
    container: object,
    *,
    cors_origins: Sequence[str] = (),
    registry: CollectorRegistry | None = None,
    metrics_registry: CollectorRegistry | None = None,
    lifespan: Lifespan[FastAPI] | None = None,
    metrics_token: str | None = None,
    docs_enabled: bool = True,
) -> FastAPI:
    """The ASGI application: routes, error mapping and middleware.

    ``container`` provides the use cases, the cursor codec and the readiness probe by name
    (``adapters.http.dependencies.provided``); tests override its providers with fakes. With a
    ``metrics_token``, ``/metrics`` wants it as a bearer token; without ``docs_enabled`` there is
    no ``/docs`` and no ``/openapi.json``. ``/metrics`` serves ``registry``; the HTTP metrics are
    recorded in ``metrics_registry`` when another collector serves them (several workers).
    """
    app = FastAPI(
        title="Task API",
        version="1.0.0",
        description="Each user's tasks, strictly their own. Authenticate with a bearer JWT.",
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
        servers=[{"url": "/", "description": "This server"}],
        openapi_tags=_TAGS,
        openapi_url=None,  # served by _serve_docs as a route, so the access log names it
        docs_url=None,  # served below, with its assets: no CDN on a page where tokens are pasted
        redoc_url=None,
        lifespan=lifespan,
        # "/tasks/" is no route: a 404, not a redirect built from the client's Host header.
        redirect_slashes=False,
        # A body without Content-Type is read as JSON; one declared as another type is not.
        strict_content_type=False,
        # Metrics are Prometheus' (/metrics); FastAPI's OpenTelemetry hooks would only cost a
        # provider lookup per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    stamp_log_records_with_request_id()
    app.state.container = container
    registry = registry or CollectorRegistry()
    metrics = app.state.metrics = HttpMetrics(metrics_registry or registry)
    app.include_router(router)
    app.include_router(tags_router)
    app.include_router(events_router)
    app.include_router(problem_pages)  # where each problem's `type` leads
    install_problem_handlers(app)

    @app.get(
        "/healthz",
        tags=["service"],
        operation_id="getHealth",
        summary="Liveness: the process runs",
        responses=problems(database=False, limited=False),
    )
    async def healthz() -> Liveness:
        return Liveness(status="ok")

    @app.get(
        "/readyz",
        tags=["service"],
        operation_id="getReadiness",
        summary="Readiness: the database answers as requests use it",
        response_model=Readiness,
        responses=problems(limited=False),
    )
    async def readyz(
        readiness: Annotated[HealthProbe, Depends(provided("readiness", HealthProbe))],
    ) -> Response:
        if await readiness.is_ready():
            return Response(b'{"status":"ready"}', media_type=JSON)
        return problem(
            503,
            ProblemCode.DATABASE_UNAVAILABLE,
            "The database does not answer.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.get(
        "/metrics",
        tags=["service"],
        operation_id="getMetrics",
        summary="Prometheus metrics: requests and latency by route and status, pool use",
        response_class=Response,
        description="With `METRICS_TOKEN` set: `Authorization: Bearer <METRICS_TOKEN>`.",
        responses={
            200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
            **problems(401, database=False, limited=False),
        },
    )
    async def metrics_endpoint(request: Request) -> Response:
        if metrics_token is not None and not _is_bearer(request, metrics_token):
            await log_security_event(request, 401, "metrics token missing or wrong", None)
            return problem(
                401,
                ProblemCode.UNAUTHORIZED,
                "The metrics token is required.",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    if docs_enabled:
        _serve_docs(app)
    answer_head(app.router)
    # Every route, for a 405's Allow: the included routers' own and the app's.
    app.state.api_routes = [
        *router.routes,
        *tags_router.routes,
        *events_router.routes,
        *problem_pages.routes,
        *(route for route in app.router.routes if isinstance(route, APIRoute)),
    ]
    app.openapi = openapi_builder(app)  # type: ignore[method-assign]  # FastAPI's documented override
    # Added innermost first. The edge is outermost, so every later layer (and its logs) sees the
    # request id; the body limit and a bug's 500 are inside CORS, so they carry CORS headers.
    app.add_middleware(BodySizeLimitMiddleware)
    app.add_middleware(InternalErrorMiddleware)
    if cors_origins:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "Last-Event-ID",  # a browser resuming an event stream
                "X-Request-ID",
            ],
            expose_headers=_EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(RequestEdgeMiddleware, metrics=metrics)
    return app
