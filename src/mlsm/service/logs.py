"""The service's structured log: one JSON object per line on standard error (requests, reloads, lifecycle), the
lines of uvicorn and asyncio included (a traceback is a field of its event, never raw text)."""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any, TextIO

import orjson

__all__ = ["EventLog", "capture_server_logs"]


class EventLog:
    """Writes events as JSON lines: ``{"ts": ..., "level": ..., "event": ..., **fields}``.

    ``access=False`` drops the per-request ``request`` events and keeps the rest.
    """

    def __init__(self, stream: TextIO | None = None, *, access: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.access = access

    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        """Log one event; values that are not JSON are written as their ``str``."""
        if event == "request" and not self.access:
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        line = _line({"ts": stamp, "level": level, "event": event, **fields})
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken log stream must never fail a request
            pass


_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _line(event: dict[str, Any]) -> str:
    """One event as a JSON line: orjson (one per request, a fifth of the standard library's cost), which writes
    whatever is not JSON as its ``str`` as the standard library's ``default=str`` would; the standard library where
    orjson refuses a value (an integer beyond 64 bits, a lone surrogate, a key that is not text). A NaN is written as
    ``null`` (the standard library wrote ``NaN``, which no JSON reader takes)."""
    try:
        return orjson.dumps(event, default=str, option=_OPTIONS).decode()
    except TypeError:
        return json.dumps(event, default=str, ensure_ascii=False)


class _EventHandler(logging.Handler):
    """Writes log records as ``server`` events of an :class:`EventLog`, a traceback as a field of the same line."""

    def __init__(self, log: EventLog) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage().strip()}
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                fields["error"] = f"{type(error).__name__}: {error}"
                fields["traceback"] = "".join(traceback.format_exception(error))[-4000:]
            level = (
                "error"
                if record.levelno >= logging.ERROR
                else "warning"
                if record.levelno >= logging.WARNING
                else "info"
            )
            self.log.event("server", level, **fields)
        except Exception:  # a log line must never fail the server
            self.handleError(record)


def capture_server_logs(log: EventLog, names: tuple[str, ...] = ("uvicorn", "asyncio")) -> None:
    """Send the records of the loggers ``names`` (and their children) to ``log`` only, as JSON lines."""
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, _EventHandler):
                logger.removeHandler(handler)
        logger.addHandler(_EventHandler(log))
        logger.propagate = False
