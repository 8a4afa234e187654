"""Per-request context shared by middleware, handlers and log records."""

from __future__ import annotations

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_installed = False


def stamp_log_records_with_request_id() -> None:
    """Give every log record a ``request_id`` attribute: the id of the request being served.

    Done in the record factory rather than in one handler's filter, so that every handler (the
    JSON one, pytest's, any an operator adds) sees it. Idempotent.
    """
    global _installed  # noqa: PLW0603  # the factory is process-wide by nature
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
