"""OpenAPI as a product: problem+json on every error, hand-parsed bodies, no FastAPI 422s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from adapters.http.schemas import TaskOut

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"


class FieldError(BaseModel):
    """One invalid input."""

    field: str = Field(examples=["title"])
    message: str = Field(examples=["must not be empty"])


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/validation-error",
                    "title": "Bad Request",
                    "status": 400,
                    "detail": "title must not be empty",
                    "code": "validation_error",
                    "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "errors": [{"field": "title", "message": "must not be empty"}],
                }
            ]
        }
    )

    type: str = Field(description="A URI reference naming the kind of problem")
    title: str = Field(description="The HTTP status phrase")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong, for a human")
    code: str = Field(
        description="Stable machine-readable word: unauthorized, token_expired, forbidden, "
        "task_not_found, validation_error, precondition_failed, idempotency_conflict, "
        "idempotency_in_progress, payload_too_large, database_unavailable, not_found, "
        "method_not_allowed, internal_error"
    )
    request_id: str | None = Field(description="The request's X-Request-ID")
    errors: list[FieldError] | None = Field(
        default=None, description="For validation errors: each invalid field"
    )


_DESCRIPTIONS: Final = {
    400: "Invalid body, query or header (`validation_error`)",
    401: "Missing, invalid or expired token (`unauthorized`, `token_expired`)",
    403: "The path names another user (`forbidden`)",
    404: "No such task of this user (`task_not_found`)",
    409: "Idempotency-Key reused with another body (`idempotency_conflict`) or still in "
    "flight (`idempotency_in_progress`)",
    412: "If-Match names a stale version (`precondition_failed`)",
    413: "Body over 64 KiB (`payload_too_large`)",
    503: "The database is unreachable (`database_unavailable`); see Retry-After",
}
_PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}
BEARER_SECURITY: Final[dict[str, Any]] = {"security": [{"HTTPBearer": []}]}
_BEARER_SCHEME: Final = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A JWT from the auth system",
}


def parameters(params: list[dict[str, Any]]) -> dict[str, Any]:
    """``openapi_extra`` declaring parameters that the handler reads itself."""
    return {"parameters": params}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these error statuses, each a problem+json (plus 413 and 503)."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}},
        }
        for status in (*statuses, 413, 503)
    }


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body that the handler parses itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


def openapi_builder(
    app: FastAPI, body_models: tuple[type[BaseModel], ...]
) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: FastAPI's schema, completed and cached."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {})["securitySchemes"] = {"HTTPBearer": _BEARER_SCHEME}
        components = schema["components"].setdefault("schemas", {})
        models: tuple[type[BaseModel], ...] = (*body_models, TaskOut, Problem, FieldError)
        for model in models:
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(definition.pop("$defs", {}))
            components[model.__name__] = definition
        # Every validation failure is a 400 problem (documented per route), never FastAPI's 422.
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    return build
