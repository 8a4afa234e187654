"""Connection-pool figures for Prometheus."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from adapters.postgres.database import Database

_FIGURES: Final = {
    "open": "Connections open",
    "checked_out": "Connections in use by requests",
    "idle": "Connections open and waiting in the pool",
    "max": "Most connections the pool will open",
}


def _figures(database: Database) -> dict[str, int]:
    pool = database.pool
    if pool is None:
        return {}
    size, idle = pool.get_size(), pool.get_idle_size()
    return {"open": size, "checked_out": size - idle, "idle": idle, "max": pool.get_max_size()}


class PoolCollector(Collector):
    """``taskapi_db_pool_*`` gauges: connections open, in use, idle, and the maximum.

    Read from the pool at scrape time: the figures of this process.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, value in _figures(self._database).items():
            yield GaugeMetricFamily(f"taskapi_db_pool_{name}", _FIGURES[name], value=value)


class PoolGauges:
    """The same gauges, summed over the live worker processes (Prometheus' multiprocess mode).

    A worker cannot read another's pool when it is scraped, so each writes its own figures
    whenever ``sample`` is called.
    """

    def __init__(self, database: Database, registry: CollectorRegistry) -> None:
        self._database = database
        self._gauges = {
            name: Gauge(
                f"taskapi_db_pool_{name}",
                documentation,
                registry=registry,
                multiprocess_mode="livesum",
            )
            for name, documentation in _FIGURES.items()
        }

    def sample(self) -> None:
        """Write this process's figures now."""
        for name, value in _figures(self._database).items():
            self._gauges[name].set(value)
