"""Every log record becomes one line of JSON with the fields an operator's pipeline reads."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from adapters.http.context import request_id_var
from bootstrap.logging import configure_logging


@pytest.fixture
def stdout(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What ``configure_logging`` writes, with the process's logging put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    captured = io.StringIO()
    monkeypatch.setattr("sys.stdout", captured)
    configure_logging("INFO")
    yield captured
    root.handlers[:] = handlers
    root.setLevel(level)


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


def test_a_lone_surrogate_still_gives_its_line(stdout: io.StringIO) -> None:
    logging.getLogger("taskapi.security").warning("refused", extra={"subject": "a\ud800b"})

    (line,) = _lines(stdout)
    assert line["message"] == "refused"
    assert line["subject"] == "a\ud800b"  # escaped by the stdlib encoder, read back as written
    assert "Logging error" not in stdout.getvalue()


def test_an_exception_is_written_as_its_traceback(stdout: io.StringIO) -> None:
    logging.getLogger("taskapi").error("failed", exc_info=ValueError("boom"))

    (line,) = _lines(stdout)
    assert "ValueError: boom" in str(line["exc_info"])
