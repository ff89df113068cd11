"""The service's structured log: one JSON object per line on standard error (requests, reloads, lifecycle)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

__all__ = ["EventLog"]


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
        line = json.dumps({"ts": stamp, "level": level, "event": event, **fields}, default=str, ensure_ascii=False)
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken log stream must never fail a request
            pass
