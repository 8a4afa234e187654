"""The OpenAPI document: the contract typed clients are generated from says what the server does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

COMMITTED = Path(__file__).resolve().parents[3] / "openapi.json"
OPERATIONS = {
    ("get", "/api/{user_id}/tasks"): "listTasks",
    ("post", "/api/{user_id}/tasks"): "createTask",
    ("get", "/api/{user_id}/tasks/{task_id}"): "getTask",
    ("put", "/api/{user_id}/tasks/{task_id}"): "updateTask",
    ("patch", "/api/{user_id}/tasks/{task_id}/complete"): "completeTask",
    ("get", "/api/{user_id}/tags"): "listTags",
    ("get", "/api/{user_id}/tasks/changes"): "listChanges",
    ("get", "/api/{user_id}/events"): "streamEvents",
    ("delete", "/api/{user_id}/tasks/{task_id}"): "deleteTask",
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
    ("get", "/metrics"): "getMetrics",
}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    return served


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in operation["parameters"] if p["name"] == name]
    assert len(found) == 1, name
    return found[0]


def test_the_committed_openapi_json_is_what_is_served(document: dict[str, Any]) -> None:
    committed: dict[str, Any] = json.loads(COMMITTED.read_text())
    assert document == committed, "openapi.json is stale: run `make openapi`"


def test_every_operation_has_its_contract_operation_id(document: dict[str, Any]) -> None:
    found = {(method, path): op["operationId"] for method, path, op in operations(document)}
    assert found == OPERATIONS


def test_bearer_security_is_declared_at_the_root_and_lifted_from_the_probes(
    document: dict[str, Any],
) -> None:
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT from the auth system",
    }
    for method, path, operation in operations(document):
        if path.startswith("/api/"):
            assert "security" not in operation, (method, path)  # the root's applies
        else:
            assert operation["security"] == [], (method, path)


def test_servers_tags_and_license_are_declared(document: dict[str, Any]) -> None:
    assert document["servers"] == [{"url": "/", "description": "This server"}]
    assert [tag["name"] for tag in document["tags"]] == ["tasks", "service"]
    assert document["info"]["license"] == {"name": "Apache-2.0", "identifier": "Apache-2.0"}


def test_errors_are_problem_json_and_there_is_no_422(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            assert status != "422", (method, path)
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"]
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }, (method, path, status)


def test_413_is_declared_only_where_a_body_is_read(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        assert ("413" in operation["responses"]) == ("requestBody" in operation), (method, path)
    assert {(method, path) for method, path, op in operations(document) if "requestBody" in op} == {
        ("post", "/api/{user_id}/tasks"),
        ("put", "/api/{user_id}/tasks/{task_id}"),
    }


def test_problem_code_is_an_enum_errors_optional_request_id_a_string(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    problem = schemas["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail", "code", "request_id"]
    assert problem["properties"]["request_id"]["type"] == "string"
    assert "default" not in problem["properties"]["errors"]
    assert problem["properties"]["errors"]["type"] == "array"
    codes = schemas["ProblemCode"]["enum"]
    for code in (
        "unauthorized",
        "token_expired",
        "forbidden",
        "task_not_found",
        "validation_error",
        "precondition_failed",
        "idempotency_conflict",
        "idempotency_in_progress",
        "payload_too_large",
        "database_unavailable",
        "write_contention",
        "rate_limited",
        "request_header_fields_too_large",
    ):
        assert code in codes


def test_optional_body_fields_are_optional_not_null_defaults(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    create, update = schemas["TaskCreate"], schemas["TaskUpdate"]
    assert create["required"] == ["title"]
    assert "required" not in update
    assert update["minProperties"] == 1
    for body in (create, update):
        assert body["additionalProperties"] is False
        for name, prop in body["properties"].items():
            assert "default" not in prop, name
    # Null is refused for title and completed, accepted for description (it clears it).
    assert update["properties"]["title"]["type"] == "string"
    assert update["properties"]["completed"]["type"] == "boolean"
    assert {"type": "null"} in update["properties"]["description"]["anyOf"]


def test_text_limits_come_from_the_domain(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for body in ("TaskCreate", "TaskUpdate"):
        title = schemas[body]["properties"]["title"]
        assert (title["minLength"], title["maxLength"]) == (1, 500)
        description = schemas[body]["properties"]["description"]["anyOf"][0]
        assert description == {"type": "string", "maxLength": 5000}


def test_query_and_path_parameters_have_their_real_types(document: dict[str, Any]) -> None:
    listing = document["paths"]["/api/{user_id}/tasks"]["get"]
    assert parameter(listing, "completed")["schema"]["type"] == "boolean"
    assert parameter(listing, "completed")["required"] is False
    limit = parameter(listing, "limit")["schema"]
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == (
        "integer",
        1,
        1000,
        50,
    )
    assert parameter(listing, "cursor")["schema"]["type"] == "string"
    task_id = parameter(document["paths"]["/api/{user_id}/tasks/{task_id}"]["get"], "task_id")
    assert task_id["schema"]["type"] == "integer"
    assert task_id["schema"]["format"] == "int64"
    assert task_id["schema"]["minimum"] == 1
    user_id = parameter(listing, "user_id")["schema"]
    assert (user_id["minLength"], user_id["maxLength"]) == (1, 255)
    task = document["components"]["schemas"]["TaskOut"]["properties"]
    assert task["id"]["format"] == task["version"]["format"] == "int64"


def test_every_header_the_server_sends_is_declared(document: dict[str, Any]) -> None:
    paths = document["paths"]
    one = paths["/api/{user_id}/tasks/{task_id}"]
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            assert "X-Request-ID" in response["headers"], (method, path, status)
            if path.startswith("/api/"):
                assert "Cache-Control" in response["headers"], (method, path, status)
            if status == "401":
                assert "WWW-Authenticate" in response["headers"]
            if status == "503":
                assert "Retry-After" in response["headers"]
            if status == "412":
                assert "ETag" in response["headers"]
            if status == "429":
                assert {"Retry-After", "RateLimit-Policy", "RateLimit"} <= set(response["headers"])
    assert "ETag" in one["get"]["responses"]["304"]["headers"]
    assert "ETag" in one["get"]["responses"]["200"]["headers"]
    created = paths["/api/{user_id}/tasks"]["post"]["responses"]["201"]["headers"]
    assert {"ETag", "Location", "Idempotent-Replayed"} <= set(created)
    listed = paths["/api/{user_id}/tasks"]["get"]["responses"]["200"]["headers"]
    assert {"X-Total-Count", "Link"} <= set(listed)
    assert "Retry-After" in paths["/api/{user_id}/tasks"]["post"]["responses"]["409"]["headers"]
    streamed = paths["/api/{user_id}/events"]["get"]["responses"]["200"]["headers"]
    assert {"Cache-Control", "X-Accel-Buffering"} <= set(streamed)
    key = parameter(paths["/api/{user_id}/tasks"]["post"], "Idempotency-Key")["schema"]
    assert (key["type"], key["minLength"], key["maxLength"], key["pattern"]) == (
        "string",
        1,
        255,
        "^[\\x20-\\x7e]+$",
    )
    for header in ("If-Match", "If-None-Match", "Idempotency-Key"):
        declared = [
            p["name"] for _, _, op in operations(document) for p in op.get("parameters", ())
        ]
        assert header in declared


def test_readiness_has_a_typed_body(document: dict[str, Any]) -> None:
    ready = document["paths"]["/readyz"]["get"]["responses"]["200"]
    assert ready["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }
    schema = document["components"]["schemas"]["Readiness"]
    assert schema["properties"]["status"]["const"] == "ready"


async def test_swagger_ui_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


def test_every_task_operation_declares_its_429(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        assert ("429" in operation["responses"]) == path.startswith("/api/"), (method, path)


def test_each_error_response_shows_an_example_of_its_own_status(document: dict[str, Any]) -> None:
    seen = set()
    for path in document["paths"].values():
        for operation in path.values():
            for status, response in operation["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                content = response["content"]["application/problem+json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
                example = content["example"]
                assert example["status"] == int(status)
                assert example["type"] == f"/problems/{example['code'].replace('_', '-')}"
                seen.add(example["code"])
    assert {"validation_error", "unauthorized", "task_not_found", "rate_limited"} <= seen


def test_every_operation_declares_the_431_any_request_may_get(document: dict[str, Any]) -> None:
    # The request line counts: a query string of 4096 "é"s is 24 KiB once percent-encoded.
    for method, path, operation in operations(document):
        declared = operation["responses"].get("431")
        assert declared is not None, (method, path)
        example = declared["content"]["application/problem+json"]["example"]
        assert example["code"] == "request_header_fields_too_large"
