"""OpenAPI as a product: the committed openapi.json is what the service serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"


async def served(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_the_committed_openapi_json_matches_the_served_schema(
    client: httpx.AsyncClient,
) -> None:
    committed = json.loads(COMMITTED.read_text())
    assert await served(client) == committed, "openapi.json is stale: run `make openapi`"


async def test_every_api_operation_uses_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    document = await served(client)
    schemes = document["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT from the auth system",
    }
    for path, operations in document["paths"].items():
        if path.startswith("/api/"):
            for operation in operations.values():
                assert operation["security"] == [{"HTTPBearer": []}]


async def test_every_documented_error_is_problem_json_and_there_is_no_422(
    client: httpx.AsyncClient,
) -> None:
    document = await served(client)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                assert status != "422", (method, path)
                if status.startswith(("4", "5")):
                    content = response["content"]
                    assert list(content) == ["application/problem+json"], (method, path, status)
                    assert content["application/problem+json"]["schema"] == {
                        "$ref": "#/components/schemas/Problem"
                    }


async def test_request_bodies_and_examples_are_documented(client: httpx.AsyncClient) -> None:
    document = await served(client)
    schemas = document["components"]["schemas"]
    assert schemas["TaskCreate"]["additionalProperties"] is False
    assert schemas["TaskCreate"]["required"] == ["title"]
    assert schemas["TaskOut"]["examples"]
    put = document["paths"]["/api/{user_id}/tasks/{task_id}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TaskUpdate"
    }


async def test_swagger_ui_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
