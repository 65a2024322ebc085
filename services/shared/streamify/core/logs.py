"""Structured logging: one JSON object per line (or plain text), every record tagged with the
request id of the RPC it belongs to.

``request_id`` is a ContextVar; the server wrapper sets it in each RPC's own task, so anything
logged while serving that call (including from libraries) carries it.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamify.core.config import Settings

__all__ = ["JsonFormatter", "RequestIdFilter", "configure_logging", "get_logger", "request_id"]

request_id: ContextVar[str | None] = ContextVar("streamify_request_id", default=None)

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"
# Attributes every LogRecord has; anything else on a record came from `extra=` and is emitted.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "request_id", "taskName"}
)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current RPC's id, or "-") to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class _StreamifyHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marker class so configure_logging can replace its own handler when called twice."""


def configure_logging(settings: Settings) -> None:
    """Send the root logger to stderr at ``settings.log_level``, as JSON lines or text per
    ``settings.log_format``. Idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StreamifyHandler):
            root.removeHandler(handler)
    handler = _StreamifyHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
