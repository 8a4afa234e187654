"""Per-request context shared by middleware, handlers and log records."""

from __future__ import annotations

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdLogFilter(logging.Filter):
    """Adds ``request_id`` to every log record made while a request is being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True
