"""The scoring engine: one object that scores one record (real time) or a chunk of columns (batch).

An :class:`Engine` plans a model set once (:mod:`mlsm.engine._plan`): it checks statuses, duplicate
``name@version`` keys, field specs and summary-model dependencies, raising before any record is scored. Then, per
record: validate each model's fields, call the model, check its output, and put the result or an error in the
model's own slot (:mod:`mlsm.engine._slots`); summary models run last. A model's failure never reaches another
model or another record.

Options shared by both paths: ``timeout`` (seconds, for every model or by ``name@version``/``name``) cuts off a
model call that hangs, putting ``_error`` in that model's slot only (see :mod:`mlsm.engine._timeouts`);
``on_call`` is told how long every model call took (the service's per-model latency metric).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, TypeVar

from mlsm._gc import gc_paused
from mlsm.engine._columns import score_columns
from mlsm.engine._plan import LAYOUTS, plan
from mlsm.engine._record import RecordPath, compile_record_path, score_nested
from mlsm.engine._timeouts import OnCall
from mlsm.errors import ModelDefinitionError
from mlsm.fields import ColumnResult, FieldCheck

if TYPE_CHECKING:
    from mlsm.models import Model, SummaryModel

__all__ = ["Engine"]

T = TypeVar("T")


class Engine:
    """A planned model set that scores records.

    ``Engine(models, summary_models=(), layout="flat", timeout=None, on_call=None)``; ``SummaryModel`` instances
    found in ``models`` run after the plain models, in their order. ``score(record)`` returns the record's results
    ``{name: {version: slot}}``; ``score_columns(columns, n)`` returns one such dict per row.

    ``timeout`` is a number of seconds for every model, or a mapping from ``name@version`` or ``name`` to seconds
    (``"*"`` for the rest); a call past its limit gets ``_error`` "timed out ..." in its slot. ``on_call(key,
    seconds, rows)`` is called after every model call. ``close()`` releases the threads a time limit uses.
    """

    def __init__(
        self,
        models: Iterable[Model],
        summary_models: Iterable[SummaryModel] = (),
        *,
        layout: str = "flat",
        timeout: float | Mapping[str, float] | None = None,
        on_call: OnCall | None = None,
    ) -> None:
        if layout not in LAYOUTS:
            raise ModelDefinitionError(f"invalid layout {layout!r}; valid layouts are: {', '.join(LAYOUTS)}")
        self.layout = layout
        planned = plan(models, summary_models, timeout=timeout, on_call=on_call)
        self.models: tuple[Model, ...] = planned.models
        self.summary_models: tuple[SummaryModel, ...] = planned.summary_models
        self.timeouts = planned.timeouts
        self._pool = planned.pool
        self._checks = planned.checks
        self._steps = planned.steps
        self._record_path: RecordPath | None = None  # compiled on first use

    @property
    def all_models(self) -> tuple[Model, ...]:
        """Every model in the order it runs: plain models, then summary models."""
        return self.models + self.summary_models

    def stuck_calls(self) -> dict[str, int]:
        """Calls cut off by a time limit that are still running, by model key (empty without time limits)."""
        return self._pool.stuck_calls() if self._pool is not None else {}

    def submit(self, executor: Executor, job: Callable[..., T], *args: Any) -> Future[T]:
        """Start ``job(*args)``, a function scoring with this engine, where its model calls are held to the engine's
        time limits: on the engine's own worker threads when it has limits (one hand-off for everything ``job``
        scores), else on ``executor``. Its future, settled on that thread."""
        if self._pool is not None:
            return self._pool.submit(job, *args)
        return executor.submit(job, *args)

    def close(self) -> None:
        """Release the worker threads that time limits use (calls still running are left to finish)."""
        if self._pool is not None:
            self._pool.close()

    @property
    def input_fields(self) -> list[str]:
        """The names of every field some model reads, in first-use order."""
        return list(dict.fromkeys(check.name for check in self._checks))

    def score(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Score one record; returns ``{name: {version: slot}}``. Never raises for a bad record or model."""
        if self.layout == "flat":
            if self._record_path is None:
                self._record_path = compile_record_path(self._checks, self._steps)
            if self._pool is not None:  # one hand-off to a watched worker for all the record's models
                return self._pool.guarded(self._record_path, record)
            return self._record_path(record)
        if self._pool is not None:
            return self._pool.guarded(score_nested, self._steps, record)
        return score_nested(self._steps, record)

    def score_columns(
        self,
        columns: Mapping[str, Any],
        length: int,
        *,
        on_converted: Callable[[Sequence[FieldCheck], Sequence[ColumnResult]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Score ``length`` rows given as columns (Arrow arrays or lists) by field name; flat layout only.
        ``on_converted(checks, columns)`` is given every field check and its converted column (the drift profile
        reads them instead of converting the columns again)."""
        if self.layout != "flat":
            raise ModelDefinitionError("score_columns needs the flat layout; score nested records one at a time")
        with gc_paused():
            if self._pool is not None:  # one hand-off to a watched worker for all the chunk's model calls
                return self._pool.guarded(score_columns, self._checks, self._steps, columns, length, on_converted)
            return score_columns(self._checks, self._steps, columns, length, on_converted)
