"""Retrying a call that fails for a while (a store that is down), with exponential backoff, sync and async.

The callers decide what to retry, how long, and what to say when the time is up: :func:`retry` and
:func:`retry_async` re-raise the last error then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mlsm.errors import StoreUnavailable

__all__ = ["Backoff", "retry", "retry_async"]

T = TypeVar("T")


class Backoff:
    """The waits between attempts: ``first`` seconds, doubled each time up to ``longest``, while the next attempt
    would still start within ``seconds`` of the first one."""

    def __init__(self, seconds: float, *, first: float, longest: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.delay = first
        self.longest = longest

    def next_wait(self) -> float | None:
        """How long to wait before the next attempt, or None when there is no time left for one."""
        if time.monotonic() + self.delay > self.deadline:
            return None
        wait = self.delay
        self.delay = min(self.delay * 2, self.longest)
        return wait


def retry(
    call: Callable[[], T],
    *,
    seconds: float,
    first: float,
    longest: float,
    on: tuple[type[BaseException], ...] = (StoreUnavailable,),
) -> T:
    """``call()``'s result, calling it again after each error of a type in ``on`` as :class:`Backoff` allows;
    the last such error is raised when the time is up, any other error at once."""
    backoff = Backoff(seconds, first=first, longest=longest)
    while True:
        try:
            return call()
        except on:
            wait = backoff.next_wait()
            if wait is None:
                raise
            time.sleep(wait)


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    seconds: float,
    first: float,
    longest: float,
    on: tuple[type[BaseException], ...] = (StoreUnavailable,),
) -> T:
    """:func:`retry` for a coroutine function: the waits are ``asyncio.sleep``, so the event loop runs on."""
    backoff = Backoff(seconds, first=first, longest=longest)
    while True:
        try:
            return await call()
        except on:
            wait = backoff.next_wait()
            if wait is None:
                raise
            await asyncio.sleep(wait)
