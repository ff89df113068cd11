"""Scoring off the event loop, with concurrent records grouped for model sets that have ``batch=True`` models.

A scikit-learn model costs about the same for one row as for fifty, so under load the records of concurrent
requests are scored together: one ``Engine.score_columns`` call, one vectorized call per batch model. Grouping
adds no wait when the service is idle: a record is dispatched at once when no group of its model set is being
scored; while one is, records gather until the group is ``max_size`` records, until the running group finishes, or
for ``max_wait_ms`` at most, whichever comes first. Records of different model sets (before and after a reload)
are never grouped together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..engine import Engine
from ..fields import MISSING
from .modelset import ModelSet

__all__ = ["Batcher", "score_records"]


def score_records(engine: Engine, records: list[dict[str, Any]], grouped: bool) -> list[dict[str, Any]]:
    """The engine's results for ``records``, in order: the columns path when ``grouped``, else record by record."""
    if not grouped or len(records) == 1:
        score = engine.score
        return [score(record) for record in records]
    columns = {name: [record.get(name, MISSING) for record in records] for name in engine.input_fields}
    return engine.score_columns(columns, len(records))


class _Lane:
    """The records of one model set waiting to be scored, and how many of its groups are being scored."""

    __slots__ = ("in_flight", "items", "size", "timer")

    def __init__(self) -> None:
        self.items: list[tuple[list[dict[str, Any]], asyncio.Future[list[dict[str, Any]]]]] = []
        self.size = 0
        self.in_flight = 0
        self.timer: asyncio.TimerHandle | None = None


class Batcher:
    """Scores records with a model set on a pool of ``threads``; see the module docstring for the grouping rule.

    ``on_group(records)`` is told the size of every engine call (the group-size metric).
    """

    def __init__(
        self,
        *,
        max_size: int,
        max_wait_ms: float,
        threads: int,
        on_group: Callable[[int], None] | None = None,
    ) -> None:
        self.max_size = max_size
        self.max_wait = max_wait_ms / 1000.0
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="mlsm-score")
        self._lanes: dict[ModelSet, _Lane] = {}
        self._on_group = on_group

    async def score(self, model_set: ModelSet, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each record's results ``{name: {version: slot}}``, in order, scored by ``model_set``."""
        loop = asyncio.get_running_loop()
        if not model_set.has_batch_models or len(records) >= self.max_size:
            if self._on_group is not None:
                self._on_group(len(records))
            grouped = model_set.has_batch_models
            return await loop.run_in_executor(self._executor, score_records, model_set.engine, records, grouped)
        future: asyncio.Future[list[dict[str, Any]]] = loop.create_future()
        lane = self._lanes.get(model_set)
        if lane is None:
            lane = self._lanes[model_set] = _Lane()
        lane.items.append((records, future))
        lane.size += len(records)
        if lane.in_flight == 0 or lane.size >= self.max_size:
            self._dispatch(model_set, lane)
        elif lane.timer is None:
            lane.timer = loop.call_later(self.max_wait, self._dispatch, model_set, lane)
        return await future

    def _dispatch(self, model_set: ModelSet, lane: _Lane) -> None:
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        if not lane.items:
            return
        items, lane.items, lane.size = lane.items, [], 0
        records = [record for group, _ in items for record in group]
        lane.in_flight += 1
        if self._on_group is not None:
            self._on_group(len(records))
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._executor, score_records, model_set.engine, records, True)
        job.add_done_callback(lambda done: self._finish(model_set, lane, items, done))

    def _finish(
        self,
        model_set: ModelSet,
        lane: _Lane,
        items: list[tuple[list[dict[str, Any]], asyncio.Future[list[dict[str, Any]]]]],
        done: asyncio.Future[list[dict[str, Any]]],
    ) -> None:
        lane.in_flight -= 1
        error = done.exception()
        results = None if error is not None else done.result()
        start = 0
        for group, future in items:
            if future.done():  # the request went away
                start += len(group)
                continue
            if results is None:
                future.set_exception(error if error is not None else RuntimeError("scoring failed"))
            else:
                future.set_result(results[start : start + len(group)])
            start += len(group)
        if lane.items and lane.in_flight == 0:
            self._dispatch(model_set, lane)
        elif not lane.items and lane.in_flight == 0 and self._lanes.get(model_set) is lane:
            del self._lanes[model_set]  # a replaced model set is not kept alive by an empty lane

    def close(self) -> None:
        """Stop the scoring threads once their current groups are scored."""
        self._executor.shutdown(wait=False)
