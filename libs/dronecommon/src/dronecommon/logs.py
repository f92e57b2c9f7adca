"""JSON logs that carry the active trace and span ids.

One line per record: ``time`` (RFC 3339 UTC), ``level``, ``logger``, ``message``, ``service``,
``traceId``/``spanId`` when a span is active, any ``extra={...}`` fields, and ``exception``.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any

import orjson
from opentelemetry import trace

_RESERVED = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["traceId"] = f"{context.trace_id:032x}"
            entry["spanId"] = f"{context.span_id:016x}"
        entry.update(
            {
                key: value
                for key, value in record.__dict__.items()
                if key not in _RESERVED and not key.startswith("_")
            }
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


_HANDLER_NAME = "dronecommon"


def configure_logging(service: str, level: str = "INFO", *, json: bool = True) -> None:
    """Send all logs (uvicorn's included) to stderr, as JSON unless ``json`` is false.

    Idempotent: calling it again replaces the handler it installed before.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        JsonFormatter(service)
        if json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Requests are logged by the access-log middleware, with trace ids.
    logging.getLogger("uvicorn.access").disabled = True
    # The Azure SDKs log every HTTP exchange at INFO (spans record them instead).
    logging.getLogger("azure").setLevel(max(logging.WARNING, root.level))
