"""Connection-pool figures for Prometheus, read from the pool at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from adapters.postgres.database import Database


class PoolCollector(Collector):
    """``taskapi_db_pool_*`` gauges: connections open, in use, idle, and the maximum."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._database.pool
        if pool is None:
            return
        size, idle = pool.get_size(), pool.get_idle_size()
        figures = {
            "open": ("Connections open", size),
            "checked_out": ("Connections in use by requests", size - idle),
            "idle": ("Connections open and waiting in the pool", idle),
            "max": ("Most connections the pool will open", pool.get_max_size()),
        }
        for name, (documentation, value) in figures.items():
            yield GaugeMetricFamily(f"taskapi_db_pool_{name}", documentation, value=value)
