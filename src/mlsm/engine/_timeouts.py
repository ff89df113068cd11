"""Calling models with a time limit, and timing every call.

Python cannot stop a thread, so an engine whose models have time limits scores on a worker thread
(:meth:`CallPool.submit`; :meth:`CallPool.guarded` waits for it): one hand-off for a whole record or chunk,
whatever the number of models (a hand-off costs two thread switches, ~0.1 ms on a busy machine: more than a
per-record model takes). The worker publishes the limited call it is making and when it started; a watchdog thread
looks at the runs under way when the earliest of those calls reaches its limit (and at least once per shortest
limit), so no thread wakes up for a call that ends in time. A call that runs past its limit is abandoned with the
rest of that attempt: the stuck thread is left to finish on its own, its results discarded, and the run starts
again on another worker, where every call the abandoned attempt already made hands back its recorded outcome
without running again, the late call gets :class:`~mlsm.errors.ModelTimeout` (which the engine puts in the
model's slot), and the calls after it run. Calls are known by model and how many calls of that model the run had
made before (the engine's order is the same every time for the same input), so each call runs once and has its
own limit.

So that a model that always hangs cannot pile up threads, each model may have at most ``max_stuck`` abandoned
calls still running; while it has that many, its calls fail at once without running.

:class:`ModelCaller` wraps one model's function: the engine calls it exactly like the function itself.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from mlsm.errors import ModelTimeout

__all__ = ["CallPool", "ModelCaller", "OnCall"]

#: ``on_call(model_key, seconds, rows)``: called after every model call (also one that failed or timed out).
OnCall = Callable[[str, float, int], None]

_Outcome = tuple[bool, Any, float]  # returned (True, value) or raised (False, exception); and its seconds
_Mark = tuple[str, int]  # a call: the model's key and how many calls of that model came before it in the run


class _Abandoned(BaseException):
    """Raised in an abandoned run at its next model call (nobody reads its results); never reaches a caller."""


class _Watch:
    """One attempt at a guarded run: the limited call under way (key, ordinal, limit, start), whether the watchdog
    gave up on it, how many calls each model has made, and the outcomes of calls made (earlier attempts' included)."""

    __slots__ = ("abandoned", "counts", "late", "now", "outcomes", "pool")

    def __init__(self, pool: CallPool, outcomes: dict[_Mark, _Outcome], late: dict[_Mark, float]) -> None:
        self.pool = pool  # a model calling another engine's models: those are that engine's run
        self.now: tuple[str, int, float, float] | None = None
        self.abandoned = False
        self.counts: dict[str, int] = {}
        self.outcomes = outcomes
        self.late = late  # calls abandoned in earlier attempts: how long they had run when given up on


_local = threading.local()  # .watch: the watch of the guarded run on this thread


def _watched(watch: _Watch, job: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    _local.watch = watch
    try:
        return job(*args, **kwargs)
    finally:
        _local.watch = None


class _Run:
    """A job submitted to the pool, its future, and its current attempt (watch and worker)."""

    __slots__ = ("args", "future", "job", "kwargs", "late", "outcomes", "watch", "worker")

    def __init__(self, pool: CallPool, job: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.job, self.args, self.kwargs = job, args, kwargs
        self.future: Future[Any] = Future()
        self.outcomes: dict[_Mark, _Outcome] = {}
        self.late: dict[_Mark, float] = {}
        self.watch = _Watch(pool, self.outcomes, self.late)
        self.worker: _Worker | None = None


class _Worker:
    """One reusable thread with an inbox of runs; it settles each run's future unless the run was taken from it."""

    __slots__ = ("abandoned", "inbox", "key", "thread")

    def __init__(self, pool: CallPool) -> None:
        self.inbox: queue.SimpleQueue[_Run | None] = queue.SimpleQueue()
        self.abandoned = False
        self.key = ""  # the model whose late call made the watchdog take the run from this worker
        self.thread = threading.Thread(target=self._run, args=(pool,), name="mlsm-model-call", daemon=True)
        self.thread.start()

    def _run(self, pool: CallPool) -> None:
        while True:
            run = self.inbox.get()
            if run is None:
                return
            ok = True
            try:
                value = _watched(run.watch, run.job, run.args, run.kwargs)
            except BaseException as exc:  # the caller's to re-raise (an _Abandoned one is read by nobody)
                ok, value = False, exc
            with pool.lock:
                if self.abandoned:  # the run goes on on another worker: this thread ends
                    pool.stuck[self.key] -= 1
                    return
                pool.active.discard(run)
                stop = pool.closed
                if not stop:
                    pool.idle.append(self)
            if ok:
                run.future.set_result(value)
            else:
                run.future.set_exception(value)
            del run, value
            if stop:  # a run made while closing (a request on a replaced model set): no reuse
                return


class CallPool:
    """Worker threads shared by the models of an engine, and the watchdog holding their calls to their limits.

    ``shortest`` is the shortest time limit of any model (the watchdog looks at the runs at least that often);
    ``max_stuck`` is how many abandoned calls of one model may still be running before that model's calls are
    refused outright.
    """

    def __init__(self, shortest: float, max_stuck: int = 4) -> None:
        if max_stuck < 1:
            raise ValueError(f"max_stuck must be at least 1, got {max_stuck!r}")
        self.shortest = shortest
        self.max_stuck = max_stuck
        self.lock = threading.Lock()
        self.stuck: dict[str, int] = {}
        self.idle: list[_Worker] = []
        self.active: set[_Run] = set()
        self.closed = False
        self._watchdog: threading.Thread | None = None

    def guarded(self, job: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``job(*args, **kwargs)`` on a worker thread, each model call in it held to its limit (see the module
        docstring); what ``job`` returns or raises. Run here when this thread already is in a guarded run."""
        watch: _Watch | None = getattr(_local, "watch", None)
        if watch is not None and watch.pool is self:
            return job(*args, **kwargs)
        return self.submit(job, *args, **kwargs).result()

    def submit(self, job: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Start ``job(*args, **kwargs)`` on a worker thread, each model call in it held to its limit; its future
        (settled on the worker's thread: no thread waits for it meanwhile)."""
        run = _Run(self, job, args, kwargs)
        with self.lock:
            self.active.add(run)
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, name="mlsm-time-limits", daemon=True)
                self._watchdog.start()
            self._start(run)
        return run.future

    def _start(self, run: _Run) -> None:
        """Give ``run``'s current attempt to an idle worker or a new one (the lock held)."""
        worker = run.worker = self.idle.pop() if self.idle else _Worker(self)
        worker.inbox.put(run)

    def _watch(self) -> None:
        """The watchdog: takes a run from its worker once the run's call has gone past its limit, and starts it
        again on another worker; ends once no run is under way (the next submit starts it again)."""
        wait = 0.0
        while True:
            time.sleep(wait)  # a limited call starting after a look ends its limit after the next look at the latest
            wait = self.shortest
            with self.lock:
                if not self.active:
                    self._watchdog = None
                    return
                checked = time.perf_counter()
                for run in list(self.active):
                    now = run.watch.now
                    if now is None:
                        continue
                    key, n, seconds, started = now
                    left = started + seconds - checked
                    if left > 0:
                        wait = min(wait, left)
                        continue
                    # the worker clears `now` under this lock when the call returns: it is still under way
                    worker = run.worker
                    assert worker is not None
                    run.watch.abandoned = worker.abandoned = True
                    worker.key = key
                    self.stuck[key] = self.stuck.get(key, 0) + 1
                    run.late[(key, n)] = checked - started
                    run.watch = _Watch(self, run.outcomes, run.late)  # again, replaying the outcomes recorded so far
                    self._start(run)

    def stuck_calls(self) -> dict[str, int]:
        """Abandoned calls still running, by model key (only models that have some)."""
        with self.lock:
            return {key: count for key, count in self.stuck.items() if count}

    def close(self) -> None:
        """Stop the idle threads (abandoned ones end when their call returns); calls still work, without reuse."""
        with self.lock:
            idle, self.idle = self.idle, []
            self.closed = True
        for worker in idle:
            worker.inbox.put(None)


class ModelCaller:
    """A model's function with an optional time limit and an optional ``on_call`` timing hook.

    Called exactly like the function; ``batch`` says whether the first argument is a frame or a dict of columns
    (its length is the number of rows reported to ``on_call``). With a ``pool`` (the engine has time limits), a
    call is made inside a guarded run (:meth:`CallPool.guarded`; one is started for a call made outside any).
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
        pool = self.pool
        if pool is None:
            started = time.perf_counter()
            try:
                return self.fcn(*args, **kwargs)
            finally:
                if self.on_call is not None:
                    self.on_call(self.key, time.perf_counter() - started, self._rows(args))
        watch: _Watch | None = getattr(_local, "watch", None)
        if watch is None or watch.pool is not pool:
            return pool.guarded(self, *args, **kwargs)
        if watch.abandoned:  # a job that caught _Abandoned goes no further
            raise _Abandoned
        key = self.key
        n = watch.counts.get(key, 0)
        watch.counts[key] = n + 1
        mark = (key, n)
        outcome = watch.outcomes.get(mark)
        if outcome is None:
            outcome = watch.outcomes[mark] = self._outcome(pool, watch, mark, args, kwargs)
            if self.on_call is not None:
                self.on_call(key, outcome[2], self._rows(args))
        # else the call was made by an abandoned attempt of this run: its outcome, without running it again
        if outcome[0]:
            return outcome[1]
        raise outcome[1]

    def _outcome(
        self, pool: CallPool, watch: _Watch, mark: _Mark, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Outcome:
        """The outcome of call ``mark`` in the guarded run of ``watch``: made, or refused, or the timeout of an
        earlier attempt's call that ran past its limit."""
        seconds = self.seconds
        if mark in watch.late:
            late = ModelTimeout(f"timed out: no answer within {_seconds(seconds or 0.0)} (call abandoned)")
            return (False, late, watch.late[mark])
        if seconds is None:
            started = time.perf_counter()
            try:
                return (True, self.fcn(*args, **kwargs), time.perf_counter() - started)
            except BaseException as exc:  # re-raised by __call__, where the engine decides what is fatal
                return (False, exc, time.perf_counter() - started)
        stuck = pool.stuck.get(self.key, 0)
        if stuck >= pool.max_stuck:
            refused = f"not run: {stuck} earlier calls are still running past the {_seconds(seconds)} time limit"
            return (False, ModelTimeout(refused), 0.0)
        started = time.perf_counter()
        watch.now = (self.key, mark[1], seconds, started)
        try:
            outcome: _Outcome = (True, self.fcn(*args, **kwargs), time.perf_counter() - started)
        except BaseException as exc:
            outcome = (False, exc, time.perf_counter() - started)
        with pool.lock:  # the watchdog abandons an attempt only while its call is under way: one or the other
            watch.now = None
            if watch.abandoned:
                raise _Abandoned
        return outcome

    def _rows(self, args: tuple[Any, ...]) -> int:
        return _rows(args[0]) if self.batch and args else 1


def _rows(frame: Any) -> int:
    try:
        if isinstance(frame, dict):  # batch="columns": a dict of equal-length column arrays
            return len(next(iter(frame.values()))) if frame else 1
        return len(frame)
    except TypeError:
        return 1


def _seconds(seconds: float) -> str:
    return f"{seconds:g} s"
