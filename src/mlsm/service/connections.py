"""Limits per connection that uvicorn does not set: a cap on open connections, and deadlines for a request's head.

uvicorn (0.54, httptools) closes a connection only ``timeout_keep_alive`` seconds after a response: one that is
opened and never sends a byte, or sends its headers a byte at a time, stays open for good, nothing bounds the size
of the request line and headers, and ``limit_concurrency`` answers 503 only once a request's headers have arrived
(idle sockets are never refused). :class:`GuardedProtocol` is uvicorn's httptools protocol with:

- at most ``max_connections`` open connections per process: a new connection at the cap closes the connection that
  has been idle longest and has no request in flight (a socket that never sent a request included); when every
  connection has a request in flight, the new one is answered 503 and closed;
- ``header_timeout``: from a connection's opening (or the first byte of its next request) to the end of the
  headers; past it the connection is answered 408 (closed quietly when nothing was sent) and closed;
- ``max_header_bytes`` for the request line and headers: 431 and closed, having buffered no more than that;
- ``body_timeout``: from the end of the headers to the end of the body (408 and closed);
- ``keep_alive_timeout`` between requests (uvicorn's, counted).

Each limit counts the connections it closes in ``mlsm_connections_closed_total{reason=...}``;
``mlsm_connections_open`` is how many are open (summed over the workers).
"""

from __future__ import annotations

import asyncio
import json
import resource
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mlsm.service.settings import ServiceSettings

__all__ = ["RESERVED_FILES", "ConnectionLimits", "GuardedProtocol", "guarded_protocol", "raise_file_limit"]

#: File descriptors kept for everything but client connections (store, model files, pipes, the listening socket).
RESERVED_FILES = 128


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits one process applies to its connections (see the module docstring)."""

    max_connections: int
    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    keep_alive_timeout: float

    @classmethod
    def from_settings(cls, settings: ServiceSettings, *, open_files: int | None = None) -> ConnectionLimits:
        """The settings' limits, the connection cap lowered to what ``open_files`` (the process's file limit,
        raised to its hard limit when it is too low) allows: past it, accepting fails and locks every client out."""
        cap = settings.max_connections
        files = raise_file_limit(cap + RESERVED_FILES) if open_files is None else open_files
        return cls(
            max_connections=max(1, min(cap, files - RESERVED_FILES)),
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            keep_alive_timeout=settings.keep_alive_timeout,
        )


def raise_file_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted`` (never past the hard limit); returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return wanted if soft == resource.RLIM_INFINITY else soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def guarded_protocol(
    limits: ConnectionLimits, on_close: Callable[[str], None], on_open: Callable[[bool], None] | None = None
) -> type[GuardedProtocol]:
    """A :class:`GuardedProtocol` class applying ``limits``; ``on_close(reason)`` is told each connection a limit
    closes or refuses (``max_connections``, ``idle_closed``, ``header_timeout``, ``header_too_large``,
    ``body_timeout``, ``keep_alive_timeout``), ``on_open(True)`` each connection accepted and ``on_open(False)``
    each accepted one gone (the open-connections gauge)."""
    return type("Guarded", (GuardedProtocol,), {"limits": limits, "report": _Report(on_close, on_open)})


@dataclass(frozen=True)
class _Report:
    on_close: Callable[[str], None]
    on_open: Callable[[bool], None] | None = None


def _answer(status: int, reason: str, detail: str) -> bytes:
    """A complete ``Connection: close`` response with the service's JSON error body (and a fresh request id)."""
    request_id = secrets.token_hex(8)
    body = json.dumps({"detail": detail, "request_id": request_id}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"x-request-id: {request_id}\r\nconnection: close\r\n"
    )
    if status == 503:
        head += "retry-after: 1\r\n"
    return (head + "\r\n").encode("ascii") + body


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of :class:`ConnectionLimits` (made by :func:`guarded_protocol`)."""

    limits: ClassVar[ConnectionLimits]
    report: ClassVar[_Report]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.keep_alive_timeout  # type: ignore[assignment]  # uvicorn says int
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # waiting for, or reading, a request line and headers
        self._head_bytes = 0  # bytes of the current head received so far
        self._refused = False
        self._idle_since = self.loop.time()

    # -- connections ---------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            idle = self._longest_idle()
            if idle is None:
                self._refuse(transport)
                return
            idle._close("idle_closed")
        super().connection_made(transport)
        if self.report.on_open is not None:
            self.report.on_open(True)
        self._arm(self.limits.header_timeout, "header_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
        if not self._refused and self.report.on_open is not None:
            self.report.on_open(False)

    def _refuse(self, transport: asyncio.Transport) -> None:
        self._refused = True
        self.transport = transport  # connection_lost closes it again
        detail = f"too many connections ({len(self.connections)} open, each busy): retry later"
        transport.write(_answer(503, "Service Unavailable", detail))
        transport.close()
        self.report.on_close("max_connections")

    def _longest_idle(self) -> GuardedProtocol | None:
        """The open connection without a request in flight that has been idle longest, if any."""
        found, since = None, float("inf")
        for other in self.connections:
            if not isinstance(other, GuardedProtocol) or other.transport is None or other.transport.is_closing():
                continue
            busy = other.pipeline or (other.cycle is not None and not other.cycle.response_complete)
            if not busy and other._idle_since < since:
                found, since = other, other._idle_since
        return found

    def _close(self, reason: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()
            self.report.on_close(reason)

    # -- deadlines -----------------------------------------------------------------------------------------------

    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, reason)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, reason: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if reason == "header_timeout" and cycle is not None and not cycle.response_complete:
            # a pipelined head behind a request still being answered: its time starts with that answer
            self._arm(self.limits.header_timeout, reason)
            return
        answered = reason == "body_timeout" or self._head_bytes  # a socket that never sent a byte is just closed
        if answered and (cycle is None or not cycle.response_started):
            limit = self.limits.body_timeout if reason == "body_timeout" else self.limits.header_timeout
            part = "body" if reason == "body_timeout" else "headers"
            detail = f"the request's {part} did not arrive within {limit:g} s"
            self.transport.write(_answer(408, "Request Timeout", detail))
        self._close(reason)

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self.report.on_close("keep_alive_timeout")
        super().timeout_keep_alive_handler()

    # -- data ----------------------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._idle_since = self.loop.time()
        if not self._in_head:
            super().data_received(data)
            return
        if self._deadline is None:
            self._arm(self.limits.header_timeout, "header_timeout")
        room = self.limits.max_header_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # feed only what the limit allows: the head must end within it, or the request is refused unbuffered
        self._head_bytes += room
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._in_head:
            detail = f"the request line and headers are over the limit of {self.limits.max_header_bytes} bytes"
            self.transport.write(_answer(431, "Request Header Fields Too Large", detail))
            self._close("header_too_large")
            return
        super().data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        self._arm(self.limits.body_timeout, "body_timeout")

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._idle_since = self.loop.time()
        super().on_response_complete()
