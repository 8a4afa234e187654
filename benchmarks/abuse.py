"""What one abusive client costs everyone else, with the limits on and off (benchmarks/README.md).

- noisy neighbour: a user with many tasks lists 1000-task pages on 50 connections (wrk) while
  another user reads one task every 20 ms; that user's p50/p95 and non-200 answers;
- slow readers: 40 connections ask for a page of big tasks and never read the answer; RSS;
- header flood: 8 connections send 64 MiB of unfinished headers; RSS;
- idle connections: 300 connections that send nothing; how many are still open after 12 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import _sql, database, postgres, rss_mib, server, token

LIMITS_OFF = {"RATE_LIMIT_USER_RPS": "0", "RATE_LIMIT_IP_RPS": "0", "TASKS_PER_USER_MAX": "1000000"}
NOISY_LUA = 'wrk.headers["Authorization"] = "Bearer {token}"\nwrk.path = "{path}"\n'


def seed_rows(db_url: str, user: str, count: int, description: int = 0) -> None:
    asyncio.run(
        _sql(
            db_url,
            "INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at,"
            " version) SELECT $1, 'task ' || n, repeat('d', $3), false,"
            " now() + n * interval '1 ms', now() + n * interval '1 ms', 1"
            " FROM generate_series(1, $2) AS n; ",
            user,
            count,
            description,
        )
    )
    asyncio.run(_sql(db_url, "ANALYZE tasks"))


def noisy_neighbour(base: str, secret: str, noisy: str | None, seconds: int) -> dict[str, float]:
    """The victim's GETs while ``noisy`` lists on 50 connections (or while nobody else does)."""
    victim = "victim"
    headers = {"Authorization": f"Bearer {token(secret, victim)}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        task = http.post(f"/api/{victim}/tasks", json={"title": "mine"}, headers=headers).json()
        script = Path(tempfile.mkstemp(suffix=".lua")[1])
        script.write_text(
            NOISY_LUA.format(
                token=token(secret, noisy or ""), path=f"/api/{noisy}/tasks?limit=1000"
            )
        )
        wrk = ["wrk", "-t1", "-c50", f"-d{seconds + 2}s", "--timeout", "10s", "-s", str(script)]
        load = subprocess.Popen(
            [*wrk, base] if noisy else ["sleep", str(seconds + 2)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)
        timings, failures = [], 0
        ended = time.monotonic() + seconds
        while time.monotonic() < ended:
            started = time.perf_counter()
            response = http.get(f"/api/{victim}/tasks/{task['id']}", headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
            failures += not response.is_success
            time.sleep(0.02)
        out, _ = load.communicate()
        script.unlink()
    noisy_rps = next((line.split()[1] for line in out.splitlines() if "Requests/sec" in line), "?")
    return {
        "p50": statistics.median(timings),
        "p95": statistics.quantiles(timings, n=20)[18],
        "failed": failures,
        "requests": len(timings),
        "noisy_rps": float(noisy_rps) if noisy_rps != "?" else -1,
    }


@contextlib.contextmanager
def raw_connections(base: str, count: int) -> Iterator[list[socket.socket]]:
    url = urlparse(base)
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection((url.hostname, url.port))
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def slow_readers(base: str, secret: str, user: str, process: subprocess.Popen[bytes]) -> float:
    request = (
        f"GET /api/{user}/tasks?limit=1000 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token(secret, user)}\r\n\r\n"
    ).encode()
    url = urlparse(base)
    sockets = []
    try:
        for _ in range(40):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((url.hostname, url.port))
            sock.sendall(request)
            sockets.append(sock)
        time.sleep(5)
        return rss_mib(process)
    finally:
        for sock in sockets:
            sock.close()


def header_flood(base: str, process: subprocess.Popen[bytes]) -> float:
    chunk = b"X-Filler: " + b"a" * (1 << 20) + b"\r\n"
    peak = rss_mib(process)
    stop = threading.Event()

    def send(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            for _ in range(64):
                if stop.is_set():
                    return
                sock.sendall(chunk)

    with raw_connections(base, 8) as sockets:
        threads = [threading.Thread(target=send, args=(s,), daemon=True) for s in sockets]
        for thread in threads:
            thread.start()
        for _ in range(30):
            time.sleep(0.1)
            peak = max(peak, rss_mib(process))
        stop.set()
    return peak


def idle_connections(base: str, process: subprocess.Popen[bytes]) -> tuple[int, int]:
    with raw_connections(base, 300) as sockets:
        time.sleep(1)
        before = _open_server_connections(process)
        time.sleep(12)
        after = _open_server_connections(process)
    del sockets
    return before, after


def _open_server_connections(process: subprocess.Popen[bytes]) -> int:
    fds = Path(f"/proc/{process.pid}/fd")
    return sum(1 for fd in fds.iterdir() if str(fd.readlink()).startswith("socket:")) - 1


def measure(
    db_url: str, secret: str, settings: dict[str, str], noisy_user: str, seconds: int
) -> dict[str, Any]:
    with server(db_url, secret, **settings) as (base, process, _):
        idle = rss_mib(process)
        flood = header_flood(base, process)
        connections = idle_connections(base, process)
        slow = slow_readers(base, secret, "big_pages", process)
        quiet = noisy_neighbour(base, secret, None, 3)
        noisy = noisy_neighbour(base, secret, noisy_user, seconds)
        return {
            "idle": idle,
            "flood": flood,
            "connections": connections,
            "slow": slow,
            "quiet": quiet,
            "noisy": noisy,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    secret = "bench-" + "s" * 40
    with postgres() as server_url, database(server_url) as db_url:
        with server(db_url, secret) as _:  # migrated
            pass
        seed_rows(db_url, "noisy_1m", 1_000_000)
        seed_rows(db_url, "noisy_10k", 10_000)
        seed_rows(db_url, "big_pages", 1000, description=5000)
        results = {
            "limits off, noisy user with 1 000 000 tasks": measure(
                db_url, secret, LIMITS_OFF, "noisy_1m", args.seconds
            ),
            "defaults, noisy user at TASKS_PER_USER_MAX (10 000 tasks)": measure(
                db_url, secret, {}, "noisy_10k", args.seconds
            ),
            "defaults, noisy user with 1 000 000 tasks (inserted around the limit)": measure(
                db_url, secret, {}, "noisy_1m", args.seconds
            ),
        }
    for name, r in results.items():
        quiet, noisy = r["quiet"], r["noisy"]
        print(f"\n{name}:")
        print(
            f"  RSS idle {r['idle']:.0f} MiB; during 8 x 64 MiB header flood {r['flood']:.0f} MiB"
        )
        print(
            f"  300 idle connections: {r['connections'][0]} open after 1 s, "
            f"{r['connections'][1]} after 13 s"
        )
        print(f"  40 slow readers of 1000 x 5000-char pages: RSS {r['slow']:.0f} MiB")
        print(f"  victim GET, quiet: p50 {quiet['p50']:.1f} ms, p95 {quiet['p95']:.1f} ms")
        print(
            f"  victim GET, noisy user listing 1000-task pages on 50 connections"
            f" ({noisy['noisy_rps']:.0f} req/s): p50 {noisy['p50']:.1f} ms, p95"
            f" {noisy['p95']:.1f} ms, {noisy['failed']} of {noisy['requests']} not 200"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
