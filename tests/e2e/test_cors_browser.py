"""CORS as a real browser enforces it: headless Chromium calls ``taskapi serve`` from a web page.

The page is served from its own origin (another port on 127.0.0.1); its script calls the API with
``fetch`` and a bearer token, then posts what it saw back to the page's own server (same origin,
so that report never depends on CORS). Chromium is driven by nothing but its command line: no
WebDriver, no DevTools client, so no driver whose version must match the browser's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import httpx
import pytest

from tests.e2e.conftest import Rows
from tests.process import taskapi_serve
from tests.tokens import SECRET, make_token

CHROMIUM: Final = shutil.which("chromium")
GUIDE: Final = Path(__file__).resolve().parents[2] / "docs" / "frontend.md"


def readme_function(name: str) -> str:
    """The frontend guide's JavaScript function ``name``, as a frontend would copy it."""
    found = re.search(
        rf"```js\n(async function {name}\(.*?\n}})\n```", GUIDE.read_text(), re.DOTALL
    )
    assert found, f"docs/frontend.md lost its {name}() example"
    return found.group(1)


# Headless, as root in a container, quiet: nothing the browser does on its own besides our page.
CHROMIUM_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--enable-logging=stderr",  # the page's console and errors land in chromium.log
)
REPORT_TIMEOUT: Final = 60.0
EXPOSED: Final = ("ETag", "Location", "Link", "X-Total-Count", "X-Request-ID")
# Sent on every response but not exposed: a page must not be able to read it.
NOT_EXPOSED: Final = "Date"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine (`make browser` installs Debian's as root)",
)

# The page calls the API given in its query string, then reports every result to its own origin.
PAGE: Final = (
    """<!doctype html>
<html><head><meta charset="utf-8"><title>CORS check</title></head>
<body><script>
const params = new URLSearchParams(location.search);
const api = params.get("api");
const token = params.get("token");
const exposed = __EXPOSED__;

async function call(step, method, path, body) {
  const headers = {"X-Request-ID": "browser-" + step};
  if (path.startsWith("/api/")) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const init = {method, headers};
  if (body !== undefined) init.body = JSON.stringify(body);
  try {
    const response = await fetch(api + path, init);
    const seen = {};
    for (const name of exposed) seen[name] = response.headers.get(name);
    return {step, ok: true, status: response.status, headers: seen, body: await response.json()};
  } catch (error) {
    return {step, ok: false, error: error.name + ": " + error.message};
  }
}

async function run() {
  const results = [];
  results.push(await call("health", "GET", "/healthz"));
  results.push(await call("create", "POST", "/api/alice/tasks", {title: "from the browser"}));
  results.push(await call("list", "GET", "/api/alice/tasks"));
  results.push(await call("second", "POST", "/api/alice/tasks", {title: "second"}));
  results.push(await call("page", "GET", "/api/alice/tasks?limit=1"));
  return results;
}

const report = (what) => fetch("/report", {method: "POST", body: JSON.stringify(what)});

// Live updates with the guide's own sync() and follow(): a change by another client must reach
// the store.
__SYNC__

__FOLLOW__

async function live() {
  const realFetch = window.fetch;
  window.fetch = async (...args) => {  // tells the test when the stream has opened
    const response = await realFetch(...args);
    if (String(args[0]).endsWith("/events")) await report({step: "open", status: response.status});
    return response;
  };
  // A kept token that no key opens any more (its secret was dropped): sync() starts over.
  const store = {tasks: new Map(), since: "a-token-this-server-cannot-open"};
  await sync(api, "alice", token, store);  // so follow() resumes with Last-Event-ID at once
  const controller = new AbortController();
  follow(api, "alice", async () => token, store, controller.signal);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    const task = [...store.tasks.values()].find((t) => t.title === "from another client");
    if (task) {
      controller.abort();
      return report({step: "change", at: Date.now(), task, since: store.since});
    }
  }
}

(params.get("mode") === "live" ? live() : run().then(report))
  .catch((error) => report([{step: "page", ok: false, error: "script: " + error}]));
</script></body></html>
""".replace("__EXPOSED__", json.dumps([*EXPOSED, NOT_EXPOSED]))
    .replace("__FOLLOW__", readme_function("follow"))
    .replace("__SYNC__", readme_function("sync"))
)


class PageServer:
    """Serves ``PAGE`` on its own origin and collects the reports the page posts back."""

    def __init__(self) -> None:
        self.reports: queue.Queue[bytes] = queue.Queue()
        reports = self.reports

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/":
                    self.send_error(404)
                    return
                content = PAGE.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                reports.put(self.rfile.read(length))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self.origin = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)


@pytest.fixture
def allowed_page() -> Iterator[PageServer]:
    with PageServer() as page:
        yield page


@pytest.fixture
def blocked_page() -> Iterator[PageServer]:
    with PageServer() as page:
        yield page


@pytest.fixture
def api(
    database_url: str, tmp_path: Path, clean_tasks: None, allowed_page: PageServer
) -> Iterator[str]:
    """``taskapi serve`` allowing two origins: an unrelated one and the allowed page's."""
    with taskapi_serve(
        tmp_path,
        DATABASE_URL=database_url,
        JWT_SECRET=SECRET,
        CORS_ORIGINS=f"https://app.example.com,{allowed_page.origin}",
    ) as (base, _):
        yield base


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End Chromium and every process it started (its own session), never anything else."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            continue
        return


@contextlib.contextmanager
def chromium(
    page: PageServer, api: str, workdir: Path, **query: str
) -> Iterator[Callable[[], Any]]:
    """Headless Chromium on the page; yields a function returning the page's next report."""
    assert CHROMIUM is not None
    profile = workdir / "chromium-profile"
    profile.mkdir()
    url = f"{page.origin}/?{urlencode({'api': api, 'token': make_token('alice'), **query})}"
    log_path = workdir / "chromium.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603  # the system's browser, fixed arguments
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def next_report() -> Any:  # whatever the page posted
            deadline = time.monotonic() + REPORT_TIMEOUT
            while True:
                try:
                    return json.loads(page.reports.get(timeout=0.2))
                except queue.Empty:
                    pass
                log_tail = log_path.read_text(errors="replace")[-4000:]
                assert process.poll() is None, f"Chromium exited early:\n{log_tail}"
                assert time.monotonic() < deadline, f"the page reported nothing:\n{log_tail}"

        try:
            yield next_report
        finally:
            _stop(process)


def open_in_chromium(page: PageServer, api: str, workdir: Path) -> list[dict[str, Any]]:
    """Load the page in headless Chromium and return the results its script reports."""
    with chromium(page, api, workdir) as next_report:
        results: list[dict[str, Any]] = next_report()
    return results


async def test_an_allowed_origin_calls_the_api_and_reads_the_exposed_headers(
    api: str, allowed_page: PageServer, tmp_path: Path, rows: Rows
) -> None:
    results = await asyncio.to_thread(open_in_chromium, allowed_page, api, tmp_path)
    by_step = {result["step"]: result for result in results}
    assert all(result["ok"] for result in results), results

    health = by_step["health"]
    assert health["status"] == 200
    assert health["headers"]["X-Request-ID"] == "browser-health"

    create = by_step["create"]
    assert create["status"] == 201, create
    task_id = create["body"]["id"]
    assert create["body"]["title"] == "from the browser"
    assert create["headers"]["Location"] == f"/api/alice/tasks/{task_id}"
    assert create["headers"]["ETag"] == '"1"'
    assert create["headers"]["X-Request-ID"] == "browser-create"
    assert create["headers"][NOT_EXPOSED] is None  # the browser does filter what it exposes

    listed = by_step["list"]
    assert listed["status"] == 200
    assert [task["title"] for task in listed["body"]] == ["from the browser"]
    assert listed["headers"]["X-Total-Count"] == "1"
    assert listed["headers"]["Link"] is None  # one page only
    assert listed["headers"]["X-Request-ID"] == "browser-list"

    assert by_step["second"]["status"] == 201
    paged = by_step["page"]
    assert paged["status"] == 200
    assert [task["title"] for task in paged["body"]] == ["from the browser"]
    assert paged["headers"]["X-Total-Count"] == "2"
    assert paged["headers"]["Link"].startswith("</api/alice/tasks?")
    assert paged["headers"]["Link"].endswith('>; rel="next"')

    assert await rows.count("alice") == 2


async def test_an_origin_not_allowed_is_blocked_by_the_browser(
    api: str, blocked_page: PageServer, tmp_path: Path, rows: Rows
) -> None:
    results = await asyncio.to_thread(open_in_chromium, blocked_page, api, tmp_path)

    assert [result["step"] for result in results] == ["health", "create", "list", "second", "page"]
    for result in results:
        assert result["ok"] is False, result
        assert result["error"] == "TypeError: Failed to fetch", result
    # The POST's preflight was refused, so the POST itself never reached the API.
    assert await rows.count() == 0


async def test_a_page_on_an_allowed_origin_sees_a_change_by_another_client_within_a_second(
    api: str, allowed_page: PageServer, tmp_path: Path
) -> None:
    def watch() -> tuple[dict[str, Any], float]:
        with chromium(allowed_page, api, tmp_path, mode="live") as next_report:
            opened = next_report()
            assert opened == {"step": "open", "status": 200}, opened
            written = httpx.post(
                f"{api}/api/alice/tasks",
                json={"title": "from another client"},
                headers={"Authorization": f"Bearer {make_token('alice')}"},
                timeout=10,
            )
            assert written.status_code == httpx.codes.CREATED
            acknowledged = time.time()
            seen = next_report()
        return seen, seen["at"] / 1000 - acknowledged

    seen, seconds = await asyncio.to_thread(watch)
    assert seen["step"] == "change", seen
    assert seen["task"]["user_id"] == "alice"
    assert seen["since"]  # the id it would resume from
    assert seconds < 1.0, seconds
