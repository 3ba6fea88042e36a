"""Log lines as one JSON object each (or plain text), every one carrying the request id."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from service.observability.request_id import current_request_id

LOG_FORMATS = ("json", "text")

# Libraries that log request lines (URLs carrying patient ids and search values) or SQL with
# its parameters at DEBUG/INFO: held at WARNING whatever our level, so DEBUG is still safe.
QUIET_LOGGERS = ("urllib3", "requests", "werkzeug", "gunicorn.access", "sqlalchemy")

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request id ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` unless the record already carries one."""
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, pid and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record; exceptions as type and frames only, since messages may quote input."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id() or "-",
            "pid": record.process,  # which gunicorn worker, when several serve one instance
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            entry["exc_type"] = exc_type.__name__
            entry["stack"] = "".join(traceback.format_tb(tb))
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Plain text for a developer's terminal, with the request id and no exception messages."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatException(self, ei: Any) -> str:  # logging's name
        """Type and frames only: an exception's message may quote input values."""
        return f"{ei[0].__name__}\n" + "".join(traceback.format_tb(ei[2]))


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write to whatever sys.stderr is at the time (test capture swaps it after start-up)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        """The current sys.stderr."""
        return sys.stderr


def configure_logging(level: str, log_format: str = "json") -> logging.Handler:
    """Send the root logger's records to stderr in `log_format`; safe to call once per app."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_diarybridge", False)]:
        root.removeHandler(old)  # a second app in one process replaces ours, nobody else's
    handler = StderrHandler()
    handler._diarybridge = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
