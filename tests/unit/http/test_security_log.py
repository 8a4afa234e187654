"""Every 401 and 403 is one structured record on ``taskapi.security``, never with the token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.http.observability import SampledLog
from tests.e2e.helpers import create
from tests.tokens import OTHER_SECRET, SECRET, make_token

SECURITY = "taskapi.security"
ATTRIBUTES = ("reason", "method", "path", "client", "subject")

# case -> (method, path, token or None, JSON body, status)
CASES: dict[str, tuple[str, str, str | None, dict[str, Any] | None, int]] = {
    "no token": ("GET", "/api/alice/tasks", None, None, 401),
    "expired": ("GET", "/api/alice/tasks/1", make_token("alice", ttl=-60), None, 401),
    "other secret": (
        "POST",
        "/api/alice/tasks",
        make_token("alice", secret=OTHER_SECRET),
        {"title": "x"},
        401,
    ),
    "alg none": (
        "DELETE",
        "/api/alice/tasks/1",
        make_token("alice", secret="", algorithm="none"),
        None,
        401,
    ),
    "no exp": ("PUT", "/api/alice/tasks/1", make_token("alice", exp=None), {"title": "x"}, 401),
    "garbage": ("GET", "/api/alice/tasks", "abc.def.ghi", None, 401),
    "403 list": ("GET", "/api/bob/tasks", make_token("alice"), None, 403),
    "403 complete": ("PATCH", "/api/bob/tasks/1/complete", make_token("alice"), None, 403),
    "403 create": ("POST", "/api/bob/tasks", make_token("alice"), {"title": "x"}, 403),
}


def _texts(record: logging.LogRecord) -> list[str]:
    """Everything a formatter could print of this record."""
    texts = [record.getMessage()]
    texts.extend(repr(value) for value in vars(record).values())
    if record.exc_info and record.exc_info[1] is not None:
        texts.append(repr(record.exc_info[1]))
    return texts


@pytest.mark.parametrize("case", list(CASES))
async def test_refused_request_writes_one_security_record_without_the_token(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    method, path, token, body, status = CASES[case]
    await create(client, "bob", "bob's")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    caplog.clear()
    caplog.set_level(logging.DEBUG)

    response = await client.request(method, path, json=body, headers=headers)

    assert response.status_code == status
    records = [record for record in caplog.records if record.name == SECURITY]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    record = records[0]
    assert record.levelno >= logging.INFO
    for attribute in ATTRIBUTES:
        assert hasattr(record, attribute), attribute
    reason = getattr(record, "reason", None)
    assert isinstance(reason, str)
    assert reason
    assert getattr(record, "method", None) == method
    assert getattr(record, "path", None) == path
    assert getattr(record, "client", None) == "127.0.0.1"
    # The user is named once the token's signature held; never from a forged or absent one.
    genuine = case in {"expired", "no exp"} or status == 403
    assert getattr(record, "subject", None) == ("alice" if genuine else None)
    signature = token.rsplit(".", 1)[-1] if token else ""
    for logged in caplog.records:
        for text in _texts(logged):
            assert SECRET not in text
            if token:
                assert token not in text
            if len(signature) >= 16:
                assert signature not in text


async def test_reasons_tell_failures_apart(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SECURITY)
    await client.get("/api/alice/tasks")
    await client.get("/api/alice/tasks", headers={"Authorization": f"Bearer {make_token(ttl=-60)}"})
    await client.get("/api/bob/tasks", headers={"Authorization": f"Bearer {make_token()}"})

    reasons = [getattr(r, "reason", None) for r in caplog.records if r.name == SECURITY]
    assert len(reasons) == 3
    assert len(set(reasons)) == 3


async def test_successful_and_other_failed_requests_write_no_security_record(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    caplog.set_level(logging.DEBUG)

    created = await client.post("/api/alice/tasks", json={"title": "x"}, headers=headers)
    listed = await client.get("/api/alice/tasks", headers=headers)
    invalid = await client.post("/api/alice/tasks", json={"title": ""}, headers=headers)
    missing = await client.get("/api/alice/tasks/999", headers=headers)

    assert [r.status_code for r in (created, listed, invalid, missing)] == [201, 200, 400, 404]
    assert [record for record in caplog.records if record.name == SECURITY] == []


async def _flood(app: FastAPI, refusals: int) -> None:
    """``refusals`` bad tokens, each from an address of its own (no per-address limit stops it)."""
    bad = {"Authorization": f"Bearer {make_token('alice', secret=OTHER_SECRET)}"}
    statuses = []
    for n in range(refusals):
        transport = httpx.ASGITransport(app=app, client=(f"198.51.100.{n}", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            statuses.append((await client.get("/api/alice/tasks", headers=bad)).status_code)
    assert set(statuses) == {401}


async def test_every_refusal_of_a_flood_is_written_by_default(
    app_factory: Callable[..., FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SECURITY)
    await _flood(app_factory(rate_limit_ip_rps=5, rate_limit_ip_burst=1), 60)
    written = [r for r in caplog.records if r.name == SECURITY]
    assert [r.getMessage() for r in written] == ["request refused"] * 60
    assert [getattr(r, "client", None) for r in written] == [f"198.51.100.{n}" for n in range(60)]


async def test_a_flood_past_the_operators_cap_is_sampled_and_what_was_left_out_is_counted(
    app_factory: Callable[..., FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(rate_limit_ip_rps=5, rate_limit_ip_burst=1, security_log_max_per_second=20)
    caplog.set_level(logging.INFO, logger=SECURITY)
    await _flood(app, 35)
    written = [r for r in caplog.records if r.name == SECURITY]
    assert len(written) == 20
    assert {r.getMessage() for r in written} == {"request refused"}

    await asyncio.sleep(1.1)  # the second ends: one line reports what was left out

    report = [r for r in caplog.records if r.name == SECURITY][20:]
    assert [r.getMessage() for r in report] == ["log lines suppressed"]
    assert getattr(report[0], "suppressed", None) == {"auth_failure": 15}
    assert getattr(report[0], "total", None) == 15


async def test_sampling_starts_again_each_second(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    sampled = SampledLog(logging.getLogger("tests.sampled"), per_second=2, now=lambda: now[0])
    caplog.set_level(logging.INFO, logger="tests.sampled")
    for second in (0.0, 0.5, 1.0, 1.2, 1.4):
        now[0] = second
        sampled.warning("line", {"event": "e"})
    # 0.0 and 0.5 in the first second; 1.0 and 1.2 in the next, whose third (1.4) is counted.
    assert [r.getMessage() for r in caplog.records] == ["line"] * 4
    sampled.report_suppressed()
    assert caplog.records[-1].getMessage() == "log lines suppressed"
    assert getattr(caplog.records[-1], "suppressed", None) == {"e": 1}
