"""What ``/metrics`` serves: this process's figures, or those of every worker of a ``serve``.

With ``--workers N`` each worker records into files under ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multiprocess mode, chosen by that variable at import), and a scrape, which
one worker answers, adds them up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from adapters.postgres.database import Database
from adapters.postgres.metrics import PoolCollector, PoolGauges

MULTIPROCESS_DIR_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"
POOL_SAMPLE_SECONDS: Final = 1.0
_LIVE_GAUGE_FILE: Final = re.compile(r"gauge_live\w+?_(\d+)\.db")


@dataclass(frozen=True)
class Metrics:
    """Where the metrics are recorded, and the registry ``/metrics`` serves."""

    served: CollectorRegistry
    recorded: CollectorRegistry
    pool: PoolGauges | None = None
    """Set in multiprocess mode: the pool's gauges, which ``keep_worker_metrics`` writes."""
    directory: Path | None = None


def process_metrics(database: Database) -> Metrics:
    """The registry of this process, or (multiprocess mode) one serving every worker's figures."""
    directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    if not directory:
        registry = CollectorRegistry()
        registry.register(PoolCollector(database))
        return Metrics(served=registry, recorded=registry)
    forget_dead_workers(Path(directory))
    served = CollectorRegistry()
    MultiProcessCollector(served, path=directory)  # type: ignore[no-untyped-call]  # untyped upstream
    recorded = CollectorRegistry()  # never served itself: the files are
    return Metrics(
        served=served,
        recorded=recorded,
        pool=PoolGauges(database, recorded),
        directory=Path(directory),
    )


def forget_dead_workers(directory: Path) -> None:
    """Drop the live gauges (requests in flight, pool) of workers that died without saying so."""
    for path in directory.glob("gauge_live*.db"):
        found = _LIVE_GAUGE_FILE.fullmatch(path.name)
        if found is None:
            continue
        pid = int(found[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]  # as above
        except PermissionError:  # alive, another user's: not ours to judge
            continue


async def keep_worker_metrics(metrics: Metrics, interval: float = POOL_SAMPLE_SECONDS) -> None:
    """Write this worker's pool figures every ``interval`` s; cancelled, drop its live gauges."""
    if metrics.pool is None or metrics.directory is None:
        return
    try:
        while True:
            metrics.pool.sample()
            await asyncio.sleep(interval)
    finally:
        with contextlib.suppress(OSError):
            mark_process_dead(os.getpid(), str(metrics.directory))  # type: ignore[no-untyped-call]  # as above
