"""Scoring off the event loop, with concurrent records grouped for model sets that have ``batch=True`` models.

A scikit-learn model costs about the same for one row as for fifty, so under load the records of concurrent
requests are scored together: one ``Engine.score_columns`` call, one vectorized call per batch model.

The rule, per model set. The *target* is how many records were waiting or being scored together the last time a
group was dispatched or finished (the concurrency just seen; at most ``max_size``). While no group is being
scored, the records gathered go as soon as they reach the target, or ``max_wait_ms`` after the first of them
arrived (or after the previous group finished): an idle service adds no wait (the target is one), the clients of
a finished group are scored together again when they send their next records, and a drop in load costs one
``max_wait_ms`` once. While a group is being scored, new records gather for the next group (scikit-learn holds
the GIL: two groups at once are each slower), unless the running group takes more than four times the usual
group time and at least 250 ms (a model stalls): then they go at once, on another thread.
A group never exceeds ``max_size`` records, and records of different model sets (before and after a reload) are
never grouped together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from mlsm.engine import Engine
from mlsm.fields import MISSING
from mlsm.runs._profiles import Conversions
from mlsm.service.modelset import ServingSet

__all__ = ["STALL_SECONDS", "Grouper", "Scored", "score_records"]

#: A group running this long (and 4 times its usual time) is stalled: the next group goes beside it.
STALL_SECONDS = 0.25


class Scored(NamedTuple):
    """A request's results, in order, and, when its records were scored in a group by ``Engine.score_columns``, the
    engine's converted columns of that group and where the request's records start in it (for the drift profile)."""

    results: list[dict[str, Any]]
    conversions: Conversions | None = None
    offset: int = 0


def score_records(engine: Engine, records: list[dict[str, Any]], grouped: bool) -> Scored:
    """The engine's results for ``records``: the columns path when ``grouped``, else record by record."""
    if not grouped or len(records) == 1:
        score = engine.score
        return Scored([score(record) for record in records])
    columns = {name: [record.get(name, MISSING) for record in records] for name in engine.input_fields}
    conversions = Conversions()
    return Scored(engine.score_columns(columns, len(records), on_converted=conversions), conversions)


class _Lane:
    """The records of one model set waiting to be scored, and how many of its groups are being scored."""

    __slots__ = ("flying", "in_flight", "items", "seconds", "size", "started", "target", "timer")

    def __init__(self) -> None:
        self.items: list[tuple[list[dict[str, Any]], asyncio.Future[Scored]]] = []
        self.size = 0
        self.in_flight = 0  # groups being scored
        self.flying = 0  # records in those groups
        self.target = 1  # records in the previous group: how many to wait for
        self.seconds = 0.0  # usual time of a group (moving average)
        self.started = 0.0  # when the latest group in flight was dispatched (loop time)
        self.timer: asyncio.TimerHandle | None = None


class Grouper:
    """Scores records with a model set on a pool of ``threads``; see the module docstring for the grouping rule.

    ``on_group(records, seconds)`` is told the size and duration of every engine call (the grouping metrics).
    """

    def __init__(
        self,
        *,
        max_size: int,
        max_wait_ms: float,
        threads: int,
        on_group: Callable[[int, float], None] | None = None,
    ) -> None:
        self.max_size = max_size
        self.max_wait = max_wait_ms / 1000.0
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="mlsm-score")
        self._lanes: dict[ServingSet, _Lane] = {}
        self._on_group = on_group

    async def score(self, model_set: ServingSet, records: list[dict[str, Any]]) -> Scored:
        """Each record's results ``{name: {version: slot}}``, in order, scored by ``model_set``."""
        loop = asyncio.get_running_loop()
        if not model_set.has_batch_models or len(records) >= self.max_size:
            grouped = model_set.has_batch_models
            started = loop.time()
            scored = await self._start(model_set, records, grouped)
            if self._on_group is not None:
                self._on_group(len(records), loop.time() - started)
            return scored
        future: asyncio.Future[Scored] = loop.create_future()
        lane = self._lanes.get(model_set)
        if lane is None:  # a new model set: forget idle lanes of replaced ones, so they can be freed
            for other, idle in list(self._lanes.items()):
                if not idle.items and not idle.in_flight:
                    del self._lanes[other]
            lane = self._lanes[model_set] = _Lane()
        lane.items.append((records, future))
        lane.size += len(records)
        if lane.size >= self.max_size or (lane.in_flight == 0 and lane.size >= lane.target):
            self._dispatch(model_set, lane)
        elif lane.timer is None:
            if lane.in_flight:  # wait for the running group, unless it stalls
                stall = max(STALL_SECONDS, 4 * lane.seconds)
                delay = max(0.0, lane.started + stall - loop.time())
            else:
                delay = self.max_wait
            lane.timer = loop.call_later(delay, self._dispatch, model_set, lane)
        return await future

    def _dispatch(self, model_set: ServingSet, lane: _Lane) -> None:
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        if not lane.items:
            return
        items, lane.items, lane.size = lane.items, [], 0
        records = [record for group, _ in items for record in group]
        lane.target = min(len(records) + lane.flying, self.max_size)
        lane.in_flight += 1
        lane.flying += len(records)
        loop = asyncio.get_running_loop()
        started = lane.started = loop.time()
        job = self._start(model_set, records, True)
        job.add_done_callback(lambda done: self._finish(model_set, lane, items, done, loop.time() - started))

    def _finish(
        self,
        model_set: ServingSet,
        lane: _Lane,
        items: list[tuple[list[dict[str, Any]], asyncio.Future[Scored]]],
        done: asyncio.Future[Scored],
        seconds: float,
    ) -> None:
        lane.in_flight -= 1
        if self._on_group is not None:
            self._on_group(sum(len(group) for group, _ in items), seconds)
        lane.flying -= sum(len(group) for group, _ in items)
        lane.target = min(sum(len(group) for group, _ in items) + lane.size + lane.flying, self.max_size)
        lane.seconds = seconds if not lane.seconds else 0.8 * lane.seconds + 0.2 * seconds
        error = done.exception()
        if error is not None and len(items) > 1:
            self._alone(model_set, items)  # a record the engine chokes on must fail only its own request
            items = []
        scored = None if error is not None else done.result()
        start = 0
        for group, future in items:
            if future.done():  # the request went away
                start += len(group)
                continue
            if scored is None:
                future.set_exception(error if error is not None else RuntimeError("scoring failed"))
            else:
                future.set_result(Scored(scored.results[start : start + len(group)], scored.conversions, start))
            start += len(group)
        if lane.items and lane.in_flight == 0:
            if lane.size >= lane.target:
                self._dispatch(model_set, lane)
            else:  # the finished group's clients are about to send again: give them max_wait to join
                if lane.timer is not None:
                    lane.timer.cancel()
                lane.timer = asyncio.get_running_loop().call_later(self.max_wait, self._dispatch, model_set, lane)

    def _alone(
        self,
        model_set: ServingSet,
        items: list[tuple[list[dict[str, Any]], asyncio.Future[Scored]]],
    ) -> None:
        """Score each request of a failed group by itself, so that the failure reaches only the request causing it."""
        for group, future in items:
            if future.done():
                continue
            job = self._start(model_set, group, True)
            job.add_done_callback(lambda done, future=future: _settle(future, done))  # type: ignore[misc]

    def _start(self, model_set: ServingSet, records: list[dict[str, Any]], grouped: bool) -> asyncio.Future[Scored]:
        """Score ``records`` off the event loop: on the engine's time-limit workers (one hand-off), or on the
        scoring threads when its models have no time limits."""
        engine = model_set.engine
        return asyncio.wrap_future(engine.submit(self._executor, score_records, engine, records, grouped))

    def close(self) -> None:
        """Stop the scoring threads once their current groups are scored."""
        self._executor.shutdown(wait=False)


def _settle(future: asyncio.Future[Scored], done: asyncio.Future[Scored]) -> None:
    if future.done():
        return
    error = done.exception()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(done.result())
