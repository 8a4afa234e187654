"""Connection-pool figures for Prometheus, read from the engine at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool


class PoolCollector(Collector):
    """``taskapi_db_pool_*`` gauges: connections checked out, idle, overflow, configured size."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._engine.sync_engine.pool
        if not isinstance(pool, QueuePool):
            return
        figures = {
            "checked_out": ("Connections in use by requests", pool.checkedout()),
            "idle": ("Connections open and waiting in the pool", pool.checkedin()),
            "overflow": ("Connections open beyond the pool size", max(pool.overflow(), 0)),
            "size": ("Configured pool size", pool.size()),
        }
        for name, (documentation, value) in figures.items():
            yield GaugeMetricFamily(f"taskapi_db_pool_{name}", documentation, value=value)
