"""A frontend's typed client, generated from the OpenAPI document ``taskapi serve`` serves.

``tests/typed_client/`` pins openapi-typescript, openapi-fetch, TypeScript and Redocly's CLI
through its lock file; Node and npm are Debian's (``make node`` installs them as root). The test
installs the lock with ``npm ci`` into ``.cache/typed-client`` (once per lock), fetches
``/openapi.json`` from a real server, generates ``schema.d.ts`` from it, compiles ``flow.ts``
(written against the contract, API.md) with ``tsc --strict`` and runs it against that server.
A document that types a request or an answer differently from what the server does fails here,
at compile time or at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from tests.process import taskapi_serve
from tests.tokens import SECRET, make_token

TYPED_CLIENT: Final = Path(__file__).resolve().parents[1] / "typed_client"
SOURCES: Final = ("package.json", "package-lock.json", "tsconfig.json", "flow.ts")
# Built outside the source tree (gitignored, removed by `make clean`): npm's packages, the
# generated schema and the compiled flow never land among the tests.
WORK: Final = Path(__file__).resolve().parents[2] / ".cache" / "typed-client"
NODE_MODULES: Final = WORK / "node_modules"
TOOLS: Final = NODE_MODULES / ".bin"
# Written after a successful `npm ci`: the digest of the manifest and lock it installed.
STAMP: Final = NODE_MODULES / ".taskapi-installed"
SCHEMA: Final = WORK / "generated" / "schema.d.ts"
NODE: Final = shutil.which("node")
NPM: Final = shutil.which("npm")
USER: Final = "frontend"
# Quiet, and nothing sent anywhere but to the npm registry (by `npm ci` only).
NODE_ENV: Final = {
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "REDOCLY_TELEMETRY": "off",
    "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
    "NO_COLOR": "1",
}

pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None,
    reason="no Node.js/npm on this machine (`make node` installs Debian's as root)",
)


def run(
    *args: str | Path, cwd: Path, timeout: float = 120, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; its output is kept for the assertion messages."""
    return subprocess.run(  # noqa: S603  # pinned tools from the lock file, fixed arguments
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, **NODE_ENV, **variables},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((TYPED_CLIENT / name).read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def tools() -> Path:
    """The pinned packages, exactly as the lock says (``npm ci`` only when stale), in ``WORK``."""
    assert NPM is not None
    WORK.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        shutil.copyfile(TYPED_CLIENT / name, WORK / name)
    digest = lock_digest()
    if not STAMP.is_file() or STAMP.read_text() != digest:
        # --ignore-scripts: nothing in the lock needs an install script to work.
        installed = run(NPM, "ci", "--ignore-scripts", cwd=WORK, timeout=600)
        assert installed.returncode == 0, output(installed)
        STAMP.write_text(digest)
    return TOOLS


@pytest.fixture
def document(database_url: str, tmp_path: Path, clean_tasks: None) -> Iterator[tuple[str, Path]]:
    """A real ``taskapi serve`` and the OpenAPI document it serves, saved; yields (URL, file)."""
    with taskapi_serve(
        tmp_path, DATABASE_URL=database_url, JWT_SECRET=SECRET, LOG_LEVEL="WARNING"
    ) as (base, _):
        response = httpx.get(f"{base}/openapi.json", timeout=10)
        assert response.status_code == 200
        path = tmp_path / "openapi.json"
        path.write_bytes(response.content)
        yield base, path


def test_a_client_generated_from_the_document_compiles_strictly_and_works(
    tools: Path, document: tuple[str, Path], tmp_path: Path
) -> None:
    assert NODE is not None
    base, path = document
    SCHEMA.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    # The same document, flow and tools compile to the same program: the PgBouncer pass of
    # `make test` runs what the first pass compiled.
    inputs = hashlib.sha256(path.read_bytes() + (WORK / "flow.ts").read_bytes())
    inputs.update(lock_digest().encode())
    out = WORK / "build" / inputs.hexdigest()[:16]
    if not (out / "flow.js").is_file():
        generated = run(tools / "openapi-typescript", path, "--output", SCHEMA, cwd=WORK)
        assert generated.returncode == 0, output(generated)
        compiled = run(
            tools / "tsc",
            "--project",
            WORK,
            "--strict",
            "--noEmit",
            "false",
            "--outDir",
            out,
            cwd=WORK,
        )
        assert compiled.returncode == 0, (
            f"flow.ts does not compile against the document:\n{output(compiled)}"
        )
        # The compiled flow is an ES module that imports openapi-fetch from node_modules.
        (out / "package.json").write_text(json.dumps({"type": "module"}))
        (out / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    compiled_at = time.monotonic()
    flow = run(
        NODE,
        out / "flow.js",
        cwd=tmp_path,
        timeout=60,
        TASKAPI_BASE_URL=base,
        TASKAPI_USER=USER,
        TASKAPI_TOKEN=make_token(USER),
    )
    ran_at = time.monotonic()
    assert flow.returncode == 0, output(flow)
    lines = flow.stdout.splitlines()
    assert lines[0].startswith("created ")
    assert lines[1:] == [
        "stale If-Match: 412 Someone else changed this task: reload it.",
        "after delete: 404 This task no longer exists.",
        "typed client flow: ok",
    ], output(flow)
    print(  # noqa: T201  # how long each step takes, for whoever runs `pytest -s`
        f"generate and tsc {compiled_at - started:.1f}s, run {ran_at - compiled_at:.1f}s"
    )


def test_redocly_lints_the_document_without_errors(
    tools: Path, document: tuple[str, Path], tmp_path: Path
) -> None:
    _, path = document
    linted = run(
        tools / "redocly",
        "lint",
        path,
        "--extends",
        "recommended",
        "--format",
        "json",
        cwd=tmp_path,  # no redocly.yaml here: the recommended rules only
    )
    try:
        report: dict[str, Any] = json.loads(linted.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"redocly gave no report:\n{output(linted)}")
    problems = [
        f"{problem['severity']}: {problem['ruleId']}: {problem['message']} at "
        + ", ".join(location["pointer"] for location in problem["location"])
        for problem in report["problems"]
    ]
    print("\n".join(problems))  # noqa: T201  # warnings are allowed, but worth reading
    assert report["totals"]["errors"] == 0, "\n".join(
        problem for problem in problems if problem.startswith("error")
    )
    assert linted.returncode == 0, output(linted)
