"""The terminal progress bar of a batch run: records, records/s, and an ETA when the input size is known."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress"]


class Progress:
    """Shows progress on a terminal (``stream`` a TTY); does nothing otherwise."""

    def __init__(self, total_bytes: int | None, *, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = None
        self._start = time.monotonic()
        self._bytes = 0
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_bytes or None,
                file=self.stream,
                unit="B",
                unit_scale=True,
                bar_format="{l_bar}{bar}| {postfix} [{elapsed}<{remaining}]"
                if total_bytes
                else "{postfix} [{elapsed}]",
                leave=False,
            )

    def update(self, bytes_read: int, records: int) -> None:
        """Report that ``bytes_read`` bytes of input have been read and ``records`` scored so far."""
        if self._bar is None:
            return
        elapsed = max(time.monotonic() - self._start, 1e-9)
        self._bar.set_postfix_str(f"{records:,} records, {records / elapsed:,.0f} records/s", refresh=False)
        self._bar.update(max(0, bytes_read - self._bytes))
        self._bytes = bytes_read

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
