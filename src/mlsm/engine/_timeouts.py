"""Calling a model with a time limit, and timing every call.

Python cannot stop a thread, so a call with a limit runs on a worker thread while the caller waits at most that
long. A call that runs past its limit is abandoned: the caller gets :class:`~mlsm.errors.ModelTimeout` (which the
engine puts in the model's slot), and the stuck thread is left to finish on its own, its result discarded. So that
a model that always hangs cannot pile up threads, each model may have at most ``max_stuck`` abandoned calls still
running; while it has that many, its calls fail at once without running.

Handing a call to another thread and back costs two thread switches, ~0.1 ms on a busy machine, more than a
per-record model takes; so the many calls of one model over a chunk or group go to a worker as one job
(:meth:`CallPool.map`), which hands back each call's outcome as it finishes: one hand-off per model and chunk,
and each call still has its own time limit.

:class:`ModelCaller` wraps one model's function: the engine calls it exactly like the function itself.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from mlsm.errors import ModelTimeout

__all__ = ["Call", "CallPool", "ModelCaller", "OnCall", "Outcome"]

#: ``on_call(model_key, seconds, rows)``: called after every model call (also one that failed or timed out).
OnCall = Callable[[str, float, int], None]


Call = tuple[tuple[Any, ...], dict[str, Any]]  # positional and keyword arguments of one call
Outcome = tuple[bool, Any, float]  # returned (True, value) or raised (False, exception); and its seconds


class _Worker:
    """One reusable thread with an inbox (a job: a function and its calls) and an outbox (each call's outcome)."""

    __slots__ = ("abandoned", "inbox", "key", "outbox", "thread")

    def __init__(self, pool: CallPool) -> None:
        self.inbox: queue.SimpleQueue[tuple[Callable[..., Any], list[Call]] | None] = queue.SimpleQueue()
        self.outbox: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.abandoned = False
        self.key = ""
        self.thread = threading.Thread(target=self._run, args=(pool,), name="mlsm-model-call", daemon=True)
        self.thread.start()

    def _run(self, pool: CallPool) -> None:
        while True:
            job = self.inbox.get()
            if job is None:
                return
            fcn, calls = job
            for args, kwargs in calls:
                started = time.perf_counter()
                try:
                    outcome: Outcome = (True, fcn(*args, **kwargs), time.perf_counter() - started)
                except BaseException as exc:  # re-raised in the caller, which decides what is fatal
                    outcome = (False, exc, time.perf_counter() - started)
                with pool.lock:
                    if self.abandoned:  # the caller gave up on this call (and the rest of the job): nobody reads on
                        pool.stuck[self.key] -= 1
                        return
                    self.outbox.put(outcome)
                del outcome
            del job, fcn, calls


class CallPool:
    """Worker threads shared by the models of an engine; idle threads are reused, stuck ones abandoned.

    ``max_stuck`` is how many abandoned calls of one model may still be running before that model's calls are
    refused outright.
    """

    def __init__(self, max_stuck: int = 4) -> None:
        if max_stuck < 1:
            raise ValueError(f"max_stuck must be at least 1, got {max_stuck!r}")
        self.max_stuck = max_stuck
        self.lock = threading.Lock()
        self.stuck: dict[str, int] = {}
        self._idle: list[_Worker] = []
        self._closed = False

    def call(
        self, key: str, seconds: float, fcn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """``fcn(*args, **kwargs)``, or :class:`ModelTimeout` when it has not returned within ``seconds``."""
        ((ok, value, _),) = self.map(key, seconds, fcn, [(args, kwargs)])
        if ok:
            return value
        raise value

    def map(self, key: str, seconds: float, fcn: Callable[..., Any], calls: list[Call]) -> list[Outcome]:
        """The outcome of each call of ``fcn``, in order: ``(True, value, seconds)`` or ``(False, exception,
        seconds)``, where a call that has not returned within ``seconds`` of its start gets :class:`ModelTimeout`.

        The calls run one after another on one worker thread (one hand-off for all of them); after a call is
        abandoned, the rest go to another worker. Never raises for the calls' sake.
        """
        outcomes: list[Outcome] = []
        pending = calls
        while pending:
            with self.lock:
                stuck = self.stuck.get(key, 0)
                worker = self._idle.pop() if self._idle and stuck < self.max_stuck else None
            if stuck >= self.max_stuck:
                refused = ModelTimeout(
                    f"not run: {stuck} earlier calls are still running past the {_seconds(seconds)} time limit"
                )
                outcomes.extend((False, refused, 0.0) for _ in pending)
                break
            if worker is None:
                worker = _Worker(self)
            worker.key = key
            worker.inbox.put((fcn, pending))
            done = 0
            for _ in pending:
                waited = time.perf_counter()
                try:
                    outcome = worker.outbox.get(timeout=seconds)
                except queue.Empty:
                    with self.lock:
                        try:  # it may have finished between the timeout and taking the lock
                            outcome = worker.outbox.get_nowait()
                        except queue.Empty:
                            worker.abandoned = True
                            self.stuck[key] = self.stuck.get(key, 0) + 1
                            late = ModelTimeout(f"timed out: no answer within {_seconds(seconds)} (call abandoned)")
                            outcome = (False, late, time.perf_counter() - waited)
                outcomes.append(outcome)
                done += 1
                if worker.abandoned:
                    break
            pending = pending[done:]
            if not worker.abandoned:
                with self.lock:
                    if self._closed:  # a call made while closing (a request on a replaced model set): no reuse
                        worker.inbox.put(None)
                    else:
                        self._idle.append(worker)
        return outcomes

    def stuck_calls(self) -> dict[str, int]:
        """Abandoned calls still running, by model key (only models that have some)."""
        with self.lock:
            return {key: count for key, count in self.stuck.items() if count}

    def close(self) -> None:
        """Stop the idle threads (abandoned ones end when their call returns); calls still work, without reuse."""
        with self.lock:
            idle, self._idle = self._idle, []
            self._closed = True
        for worker in idle:
            worker.inbox.put(None)


class ModelCaller:
    """A model's function with an optional time limit and an optional ``on_call`` timing hook.

    Called exactly like the function; ``batch`` says whether the first argument is a frame (its length is the
    number of rows reported to ``on_call``).
    """

    __slots__ = ("batch", "fcn", "key", "on_call", "pool", "seconds")

    def __init__(
        self,
        key: str,
        fcn: Callable[..., Any],
        *,
        seconds: float | None,
        pool: CallPool | None,
        on_call: OnCall | None,
        batch: bool,
    ) -> None:
        if seconds is not None and pool is None:
            raise ValueError("a time limit needs a CallPool")
        self.key = key
        self.fcn = fcn
        self.seconds = seconds
        self.pool = pool
        self.on_call = on_call
        self.batch = batch

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            if self.seconds is None or self.pool is None:
                return self.fcn(*args, **kwargs)
            return self.pool.call(self.key, self.seconds, self.fcn, args, kwargs)
        finally:
            if self.on_call is not None:
                rows = _rows(args[0]) if self.batch and args else 1
                self.on_call(self.key, time.perf_counter() - started, rows)

    def map(self, calls: list[Call]) -> list[Outcome]:
        """Each call's outcome, in order, as :meth:`CallPool.map` gives them (one hand-off for all the calls when
        there is a time limit; run here, one after another, when there is none); ``on_call`` is told of each."""
        if self.seconds is None or self.pool is None:
            outcomes: list[Outcome] = []
            fcn = self.fcn
            for args, kwargs in calls:
                started = time.perf_counter()
                try:
                    outcomes.append((True, fcn(*args, **kwargs), time.perf_counter() - started))
                except BaseException as exc:
                    outcomes.append((False, exc, time.perf_counter() - started))
        else:
            outcomes = self.pool.map(self.key, self.seconds, self.fcn, calls)
        if self.on_call is not None:
            for _, _, seconds in outcomes:
                self.on_call(self.key, seconds, 1)
        return outcomes


def _rows(frame: Any) -> int:
    try:
        if isinstance(frame, dict):  # batch="columns": a dict of equal-length column arrays
            return len(next(iter(frame.values()))) if frame else 1
        return len(frame)
    except TypeError:
        return 1


def _seconds(seconds: float) -> str:
    return f"{seconds:g} s"
