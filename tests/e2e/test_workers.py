"""``taskapi serve --workers N``: several processes on one port, one set of metrics, one stop."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Rows
from tests.process import taskapi, taskapi_serve
from tests.sse import events
from tests.tokens import SECRET, bearer

_STARTED = re.compile(r"Started server process \[(\d+)\]")
_CREATED = 'taskapi_http_requests_total{method="POST",route="/api/{user_id}/tasks",status="201"}'


def _workers(log: Path) -> list[int]:
    """The worker processes started so far, in order, from the log."""
    return [int(pid) for pid in _STARTED.findall(log.read_text())]


def _metric(text: str, name: str) -> float:
    """One sample's value in Prometheus text; ``name`` with its labels as printed."""
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in:\n{text}")


def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


async def _fresh_get(base: str, path: str) -> httpx.Response:
    """A GET on a connection of its own, which either worker may take."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        return await http.get(path)


@contextmanager
def _two_workers(
    tmp_path: Path, database_url: str, pool_size: int = 20
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``serve --workers 2`` with its temporary files (the workers' metrics) in ``tmp_path/tmp``."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with taskapi_serve(
        tmp_path,
        args=("--workers", "2"),
        DATABASE_URL=database_url,
        JWT_SECRET=SECRET,
        LOG_LEVEL="INFO",
        TMPDIR=str(tmp),
        DATABASE_POOL_SIZE=str(pool_size),
    ) as (base, process):
        _until(lambda: len(_workers(tmp_path / "server.log")) == 2, 10, "two workers")
        yield base, process


def _metrics_dirs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("taskapi-metrics-*"))


async def test_two_workers_serve_one_port_and_count_as_one(
    database_url: str, tmp_path: Path, rows: Rows, clean_tasks: None
) -> None:
    tmp = tmp_path / "tmp"
    with _two_workers(tmp_path, database_url, pool_size=7) as (base, process):
        log = tmp_path / "server.log"
        # Each request on a connection of its own, so that either worker may take it.
        for n in range(20):
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                created = await http.post(
                    "/api/alice/tasks", json={"title": f"t{n}"}, headers=bearer()
                )
                assert created.status_code == 201, created.text
        assert await rows.count("alice") == 20
        [directory] = _metrics_dirs(tmp)
        # Both workers recorded requests (a counter file each) ...
        _until(lambda: len(list(directory.glob("counter_*.db"))) == 2, 5, "both to serve")
        # ... and whichever answers the scrape counts all of them, and both pools.
        await asyncio.sleep(1.5)  # each worker writes its pool's figures every second
        for _ in range(4):
            scraped = (await _fresh_get(base, "/metrics")).text
            assert _metric(scraped, _CREATED) == 20
            assert _metric(scraped, "taskapi_db_pool_max") == 14
            assert _metric(scraped, "taskapi_http_requests_in_flight") == 1  # the scrape
            assert 'pid="' not in scraped

        async with (
            httpx.AsyncClient(base_url=base, timeout=10) as http,
            http.stream("GET", "/api/alice/events", headers=bearer()) as stream,
        ):
            assert stream.status_code == 200
            stopped = time.monotonic()
            process.send_signal(signal.SIGTERM)
            async for _ in events(stream):
                pass
            ended = time.monotonic() - stopped
        assert process.wait(timeout=15) == 0
    assert ended < 3.0  # the stream's worker ended it at once, not after the 10 s grace
    assert _metrics_dirs(tmp) == []  # removed with the parent
    lines = log.read_text().splitlines()
    assert lines
    assert all(json.loads(line)["level"] for line in lines)  # every worker logs JSON
    accessed = [json.loads(line) for line in lines if '"taskapi.access"' in line]
    assert sum(line.get("status") == 201 for line in accessed) == 20
    assert "Traceback" not in log.read_text()


def test_a_worker_that_dies_is_replaced_and_its_live_figures_dropped(
    database_url: str, tmp_path: Path
) -> None:
    tmp = tmp_path / "tmp"
    with _two_workers(tmp_path, database_url) as (base, process):
        log = tmp_path / "server.log"
        [directory] = _metrics_dirs(tmp)
        victim = _workers(log)[0]
        _until((directory / f"gauge_livesum_{victim}.db").exists, 5, "its live gauges")
        os.kill(victim, signal.SIGKILL)
        _until(lambda: len(_workers(log)) == 3, 15, "a new worker")
        # The new worker dropped the dead one's figures of connections and requests in flight.
        _until(lambda: not (directory / f"gauge_livesum_{victim}.db").exists(), 5, "them to go")
        for _ in range(6):  # a connection each: both workers answer
            with httpx.Client(base_url=base, timeout=10) as http:
                assert http.get("/api/alice/tasks", headers=bearer()).status_code == 200
        assert process.poll() is None


@pytest.mark.parametrize("workers", ["0", "65", "two"])
def test_serve_refuses_a_worker_count_out_of_range(tmp_path: Path, workers: str) -> None:
    result = taskapi(
        "serve",
        "--workers",
        workers,
        cwd=tmp_path,
        JWT_SECRET=SECRET,
        DATABASE_URL="postgresql://u@127.0.0.1:1/db",
    )
    assert result.returncode == 2
    assert "argument --workers" in result.stderr
    assert "Traceback" not in result.stderr
