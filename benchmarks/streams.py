"""Event streams: memory with 1 000 open streams, and delivery latency (benchmarks/README.md).

Two servers on one database: A LISTENs (direct URL), B polls (transaction-pooler mode, no direct
URL). 1 000 streams (200 users x 5) are opened on A, then on B; changes are written one at a time
and timed from the write's acknowledgement to its event on a stream of the user.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import database, postgres, rss_mib, server, token

SECRET = "bench-secret-bench-secret-bench-secret"  # noqa: S105  # a local benchmark's own secret


async def open_streams(base: str, users: list[str], per_user: int) -> tuple[list, dict]:
    """Open the streams; return their tasks and, per user, a queue of (task id, arrival)."""
    arrivals: dict[str, asyncio.Queue[tuple[int, float]]] = {u: asyncio.Queue() for u in users}
    opened = asyncio.Semaphore(0)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    client = httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30, read=None), limits=limits)

    async def follow(user: str, first: bool) -> None:
        headers = {"Authorization": f"Bearer {token(SECRET, user)}"}
        async with client.stream("GET", f"/api/{user}/events", headers=headers) as response:
            response.raise_for_status()
            opened.release()
            async for line in response.aiter_lines():
                if first and line.startswith("data: "):
                    task_id = int(line.split('"id":', 1)[1].split(",", 1)[0])
                    arrivals[user].put_nowait((task_id, time.monotonic()))

    tasks = [asyncio.create_task(follow(user, n == 0)) for user in users for n in range(per_user)]
    for _ in tasks:
        await opened.acquire()
    return [*tasks, client], arrivals


async def latencies(writer: str, arrivals: dict, users: list[str], changes: int) -> list[float]:
    seconds = []
    async with httpx.AsyncClient(base_url=writer, timeout=30) as http:
        for n in range(changes):
            user = random.choice(users)  # noqa: S311  # a benchmark's choice, not a secret
            response = await http.post(
                f"/api/{user}/tasks",
                json={"title": f"live {n}"},
                headers={"Authorization": f"Bearer {token(SECRET, user)}"},
            )
            acknowledged = time.monotonic()
            task_id = response.json()["id"]
            while True:
                arrived_id, at = await asyncio.wait_for(arrivals[user].get(), 10)
                if arrived_id == task_id:
                    seconds.append(max(0.0, at - acknowledged))
                    break
    return seconds


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


async def measure(a: str, b: str, a_process, b_process, changes: int) -> None:  # noqa: ANN001
    users = [f"stream_{n}" for n in range(200)]
    before = rss_mib(a_process)
    streams, arrivals = await open_streams(a, users, 5)
    await asyncio.sleep(2)
    after = rss_mib(a_process)
    print(
        f"RSS of A: {before:.0f} MiB idle, {after:.0f} MiB with 1000 open streams "
        f"({(after - before) * 1024 / 1000:.0f} KiB per stream)"
    )
    for name, writer in (("same replica, LISTEN", a), ("across replicas, LISTEN", b)):
        values = await latencies(writer, arrivals, users, changes)
        print(f"{name:28} p50 {p(values, 50):6.1f} ms  p95 {p(values, 95):6.1f} ms")
    for task in streams[:-1]:
        task.cancel()
    await asyncio.gather(*streams[:-1], return_exceptions=True)
    await streams[-1].aclose()
    await asyncio.sleep(1)  # A gives the closed streams' places back: a user holds 5 in all
    streams, arrivals = await open_streams(b, users, 5)
    values = await latencies(a, arrivals, users, changes)
    print(
        f"{'across replicas, polling':28} p50 {p(values, 50):6.1f} ms  p95 {p(values, 95):6.1f} ms"
    )
    print(f"RSS of B (polling) with 1000 open streams: {rss_mib(b_process):.0f} MiB")
    for task in streams[:-1]:
        task.cancel()
    await asyncio.gather(*streams[:-1], return_exceptions=True)
    await streams[-1].aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=1000)
    args = parser.parse_args()
    with postgres() as server_url, database(server_url) as db_url:
        unlimited = {"RATE_LIMIT_USER_RPS": "0", "RATE_LIMIT_IP_RPS": "0"}
        with (
            server(db_url, SECRET, **unlimited) as (a, a_process, _),
            server(db_url, SECRET, DATABASE_POOLER="transaction", **unlimited) as (b, b_process, _),
        ):
            asyncio.run(measure(a, b, a_process, b_process, args.changes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
