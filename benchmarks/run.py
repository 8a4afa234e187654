"""Load and latency benchmark of the Task API on this machine (see benchmarks/README.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import jwt
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
TASKAPI = Path(sys.executable).with_name("taskapi")
sys.path.insert(0, str(ROOT))

from adapters.postgres.engine import DatabaseOptions  # noqa: E402

LUA = r"""
local scenario = os.getenv("SCENARIO")
local counter = 0
function setup(thread) counter = counter + 1; thread:set("tid", counter) end
function init(args) math.randomseed(os.time() * 1000 + tid) end
function request()
  local u = math.random(#users)
  local h = {["Authorization"] = "Bearer " .. tokens[u], ["Content-Type"] = "application/json"}
  local base = "/api/" .. users[u] .. "/tasks"
  if scenario == "list" then return wrk.format("GET", base .. "?limit=50", h)
  elseif scenario == "list_due" then
    return wrk.format("GET", base .. "?completed=false&sort=due_at&limit=50", h)
  elseif scenario == "create" then return wrk.format("POST", base, h, '{"title":"load test task"}')
  end
  local l = ids[u]
  local path = base .. "/" .. l[math.random(#l)]
  if scenario == "get" then return wrk.format("GET", path, h)
  elseif scenario == "update" then return wrk.format("PUT", path, h, '{"title":"renamed by load"}')
  else return wrk.format("PATCH", path .. "/complete", h) end
end
function done(s, lat, req)
  io.write(string.format("RESULT %d %d %.2f %.2f %.2f %d %d\n", s.requests, s.duration,
    lat:percentile(50) / 1000, lat:percentile(95) / 1000, lat:percentile(99) / 1000,
    s.errors.status, s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout))
end
"""


@contextmanager
def postgres() -> Iterator[str]:
    """A server's maintenance-database URL: BENCH_DATABASE_URL, or an embedded PostgreSQL."""
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return
    from bootstrap.embedded_db import embedded_postgres_url  # noqa: PLC0415

    with (
        tempfile.TemporaryDirectory(prefix="taskapi-bench-") as tmp,
        embedded_postgres_url(Path(tmp) / "pg") as url,
    ):
        yield url


def _admin(url: str) -> tuple[str, dict[str, object]]:
    options = DatabaseOptions.from_url(url)
    dsn = options.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return dsn, {k: v for k, v in options.connect_args.items() if k in ("ssl",)}


async def _sql(url: str, statement: str, *args: object) -> None:
    dsn, kwargs = _admin(url)
    connection = await asyncpg.connect(dsn, **kwargs)  # type: ignore[arg-type]
    try:
        await connection.execute(statement, *args)
    finally:
        await connection.close()


@contextmanager
def database(server_url: str) -> Iterator[str]:
    name = f"taskapi_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_sql(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(
    db_url: str, secret: str, **settings: str
) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    env = {**os.environ, "DATABASE_URL": db_url, "JWT_SECRET": secret, "LOG_LEVEL": "WARNING"}
    env.update(settings)
    subprocess.run([str(TASKAPI), "migrate"], env=env, check=True, capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(TASKAPI), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            if process.poll() is not None:
                sys.exit("bench: taskapi serve exited; run it by hand to see why")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).is_success:
                    break
            except httpx.TransportError:
                time.sleep(0.02)
        yield base, process, time.perf_counter() - started
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)


def token(secret: str, user: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + 7200}, secret, algorithm="HS256")


def seed(base: str, users: list[str], tokens: list[str], per_user: int) -> list[list[int]]:
    ids = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for user, tok in zip(users, tokens, strict=True):
            headers = {"Authorization": f"Bearer {tok}"}
            ids.append(
                [
                    http.post(f"/api/{user}/tasks", json=_seed_task(n), headers=headers)
                    .raise_for_status()
                    .json()["id"]
                    for n in range(per_user)
                ]
            )
    return ids


def _seed_task(n: int) -> dict[str, object]:
    """A task as a user would have them: most due some day, every priority, a tag or two."""
    task: dict[str, object] = {
        "title": f"seed {n}",
        "priority": ("none", "low", "medium", "high")[n % 4],
        "tags": (["home"], ["work"], ["errands", "home"])[n % 3],
    }
    if n % 3:
        task["due_at"] = f"2027-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z"
    return task


def wrk(base: str, script: Path, scenario: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
        ],
        env={**os.environ, "SCENARIO": scenario},
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+) (\d+)", out)
    if not match:
        return {"rps": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "bad": -1.0}
    n, duration, p50, p95, p99, bad, errors = match.groups()
    return {
        "rps": int(n) / (int(duration) / 1e6),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "bad": float(int(bad) + int(errors)),
    }


def _lua_list(values: list[str] | list[int]) -> str:
    return "{" + ",".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values) + "}"


def rss_mib(process: subprocess.Popen[bytes]) -> float:
    out = subprocess.run(
        ["ps", "-o", "rss=", "-g", str(process.pid)], capture_output=True, text=True, check=False
    ).stdout
    return sum(int(x) for x in out.split()) / 1024


def median_ms(http: httpx.Client, url: str, headers: dict[str, str], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        http.get(url, headers=headers).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def page_urls(http: httpx.Client, first: str, headers: dict[str, str], pages: int) -> list[str]:
    urls = [first]
    while len(urls) < pages:
        link = http.get(urls[-1], headers=headers).headers["link"]
        urls.append(re.match(r"<([^>]+)>", link).group(1))  # type: ignore[union-attr]
    return urls


# Rows like the API writes them: a third complete, three quarters due (an hour apart), every
# priority, one or two tags, a title and a description with words to search.
_ROWS = """
INSERT INTO tasks (user_id, title, description, completed, completed_at, created_at, updated_at,
                   version, due_at, priority, tags)
SELECT {user}, 'task ' || n || ' ' || md5(n::text), 'notes ' || md5((n * 7)::text), n % 3 = 0,
       CASE WHEN n % 3 = 0 THEN now() END, now() + n * interval '1 ms',
       now() + (n % 997) * interval '1 ms', 1,
       CASE WHEN n % 4 <> 0 THEN timestamptz '2027-01-01' + n * interval '1 hour' END, n % 4,
       CASE n % 3 WHEN 0 THEN '{{home}}'::text[] WHEN 1 THEN '{{work}}' ELSE '{{errands,home}}' END
FROM generate_series({first}, {last}) AS n
"""
SORTS = ("created_at", "updated_at", "due_at", "priority", "title")
FILTERS = (
    ("completed=false&due_before=2027-01-20T00:00:00Z&sort=due_at", "open, due before, by due"),
    ("completed=false", "open"),
    ("tag=work", "tag"),
    ("priority=high,medium", "priority"),
    ("q=notes%20ab", "q (two words)"),
)


def _figures(
    http: httpx.Client, user: str, headers: dict[str, str], repeat: int
) -> dict[str, tuple[float, float]]:
    """Median ms of page 1 and page 20 (50 a page, following Link) per sort, and per filter."""
    figures = {}
    for sort in (*SORTS, *(f"-{s}" for s in SORTS)):
        urls = page_urls(http, f"/api/{user}/tasks?limit=50&sort={sort}", headers, 20)
        figures[f"sort={sort}"] = (
            median_ms(http, urls[0], headers, repeat),
            median_ms(http, urls[19], headers, repeat),
        )
    for query, name in FILTERS:
        url = f"/api/{user}/tasks?limit=50&{query}"
        figures[name] = (median_ms(http, url, headers, repeat), float("nan"))
    # The change feed: a first sync's page 1 and page 20, and the steady state of a client that
    # is up to date and asks whether anything changed.
    urls = [f"/api/{user}/tasks/changes?limit=50"]
    for _ in range(19):
        token = http.get(urls[-1], headers=headers).json()["next"]
        urls.append(f"/api/{user}/tasks/changes?limit=50&since={token}")
    figures["changes, first sync"] = (
        median_ms(http, urls[0], headers, repeat),
        median_ms(http, urls[19], headers, repeat),
    )
    url: str | None = urls[0]
    while url:
        page = http.get(url, headers=headers).json()
        url = f"/api/{user}/tasks/changes?since={page['next']}" if page["has_more"] else None
        latest = page["next"]
    up_to_date = f"/api/{user}/tasks/changes?since={latest}"
    figures["changes, up to date"] = (median_ms(http, up_to_date, headers, repeat), float("nan"))
    return figures


def large_table(base: str, db_url: str, secret: str, repeat: int) -> list[tuple[str, float]]:
    user = "bench_big_user"
    headers = {"Authorization": f"Bearer {token(secret, user)}"}
    asyncio.run(_sql(db_url, _ROWS.format(user="$1", first=1, last=1000), user))
    asyncio.run(_sql(db_url, "ANALYZE tasks"))
    results = []
    with httpx.Client(base_url=base, timeout=30) as http:
        results.append(
            (
                "1000-task page, 1k rows",
                median_ms(http, f"/api/{user}/tasks?limit=1000", headers, repeat),
            )
        )
        small = _figures(http, user, headers, repeat)
        print(
            "bench: seeding 1 000 000 rows: 10 000 users, one of them with 10 000 ...", flush=True
        )
        asyncio.run(_sql(db_url, _ROWS.format(user="$1", first=1001, last=10000), user))
        # 100 tasks per user, a thousand users per transaction: each write takes its owner's
        # lock until it commits (docs/operations.md).
        for first in range(10_001, 1_000_001, 100_000):
            last = min(first + 99_999, 1_000_000)
            rows = _ROWS.format(user="'bulk_' || (n / 100)", first=first, last=last)
            asyncio.run(_sql(db_url, rows))
        asyncio.run(_sql(db_url, "ANALYZE tasks"))
        results.append(
            (
                "1000-task page, 1M rows",
                median_ms(http, f"/api/{user}/tasks?limit=1000", headers, repeat),
            )
        )
        large = _figures(http, user, headers, repeat)
    print(f"\n{'listing (median ms)':34} {'1k rows':>16} {'1M rows, 10k own':>18}")
    print(f"{'':34} {'p.1':>7} {'p.20':>8} {'p.1':>8} {'p.20':>9}")
    for name, (first, twentieth) in small.items():
        big_first, big_twentieth = large[name]
        print(f"{name:34} {first:7.2f} {twentieth:8.2f} {big_first:8.2f} {big_twentieth:9.2f}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=60)
    parser.add_argument("--scenarios", default="list,list_due,get,create,update,complete")
    parser.add_argument("--repeat", type=int, default=50, help="requests per large-table figure")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk not found (apt-get install wrk)")
    secret = secrets.token_urlsafe(48)
    users = [f"bench_user_{n:03d}" for n in range(args.users)]
    tokens = [token(secret, user) for user in users]
    with (
        postgres() as server_url,
        database(server_url) as db_url,
        # Unlimited: the large-table series sends one user's requests back to back, which the
        # per-user bucket (50 a second) would meter rather than measure.
        server(db_url, secret, RATE_LIMIT_USER_RPS="0", RATE_LIMIT_IP_RPS="0") as (
            base,
            process,
            startup,
        ),
    ):
        ids = seed(base, users, tokens, args.per_user)
        script = Path(tempfile.mkstemp(suffix=".lua")[1])
        script.write_text(
            f"users = {_lua_list(users)}\ntokens = {_lua_list(tokens)}\n"
            f"ids = {{{','.join(_lua_list(i) for i in ids)}}}\n{LUA}"
        )
        rows = [
            (s, wrk(base, script, s, args.seconds, args.connections))
            for s in args.scenarios.split(",")
        ]
        memory = rss_mib(process)
        script.unlink()
        print(f"\nstart-up: {startup:.2f} s from `taskapi serve` to a 200 from /healthz")
        print(
            f"\n{'scenario':10} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
            f" {'non-2xx':>8}"
        )
        for name, r in rows:
            figures = " ".join(f"{r[k]:8.1f}" for k in ("p50", "p95", "p99"))
            print(f"{name:10} {r['rps']:8.0f} {figures} {r['bad']:8.0f}")
        print(f"\nresident memory after the load: {memory:.0f} MiB (one worker)", flush=True)
        large = [] if args.skip_large else large_table(base, db_url, secret, args.repeat)
    if large:
        print(f"\n{'large table, unloaded (median)':32} {'ms':>7}")
        for name, ms in large:
            print(f"{name:32} {ms:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
