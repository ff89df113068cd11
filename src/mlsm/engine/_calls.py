"""Calling one model and turning what happens into its slot: a per-record call, a batch call on a frame, and one
model scored on its own (``Model.execute``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mlsm.engine._frames import arrays_from_record, frame_from_record
from mlsm.engine._plan import single_step
from mlsm.engine._slots import array_slots, error_slot, exception_slot, frame_slots, invalid_slot, output_slot
from mlsm.fields import MISSING, FieldProblem

if TYPE_CHECKING:
    from mlsm.engine._plan import Step
    from mlsm.models import Model

__all__ = [
    "call_batch",
    "call_batch_frame",
    "call_batch_one",
    "call_columns",
    "call_columns_one",
    "call_record",
    "run_single",
    "score_one",
]


def call_record(step: Step, data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Call a per-record model on one record's converted ``data``; its slot."""
    try:
        output = step.call(data=data, results=results)
    except (Exception, SystemExit) as exc:
        return exception_slot(exc, step.model.status)
    return output_slot(output, step.model.status)


def call_batch(step: Step, frame: Any, count: int) -> list[dict[str, Any]]:
    """Call a batch model once on ``frame`` of ``count`` rows; one slot per row, errors isolated per row where
    possible."""
    return _call_once(step, frame, count, frame_slots)


def call_columns(step: Step, arrays: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Call a ``batch="columns"`` model once on ``arrays`` (column arrays of ``count`` rows); one slot per row."""
    return _call_once(step, arrays, count, array_slots)


def _call_once(
    step: Step, data: Any, count: int, slots: Callable[[Any, int, str], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """One call of a model on ``count`` rows at once; its output's ``slots``, or the exception's slot for every
    row (each its own copy)."""
    if count == 0:
        return []
    try:
        output = step.call(data)
    except (Exception, SystemExit) as exc:
        slot = exception_slot(exc, step.model.status)
        return [{**slot, "_errors": [dict(error) for error in slot["_errors"]]} for _ in range(count)]
    return slots(output, count, step.model.status)


def call_columns_one(step: Step, data: dict[str, Any]) -> dict[str, Any]:
    """A ``batch="columns"`` model's slot for one record's converted ``data`` (one-row arrays, no DataFrame)."""
    return call_columns(step, arrays_from_record(step, data), 1)[0]


def call_batch_one(step: Step, data: dict[str, Any]) -> dict[str, Any]:
    """A batch model's slot for one record's converted ``data``."""
    return call_batch(step, frame_from_record(step, data), 1)[0]


def call_batch_frame(step: Step, frame: Any) -> dict[str, Any]:
    """A batch model's slot for a one-row ``frame``."""
    return call_batch(step, frame, 1)[0]


def score_one(step: Step, source: Mapping[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Validate ``source`` (a record's fields) for one model and call it; the model's slot."""
    if not isinstance(source, Mapping):
        message = f"invalid input: expected a dict of fields, got {type(source).__name__}"
        return error_slot(message, status=step.model.status)
    data: dict[str, Any] = {}
    bad: list[tuple[str, str]] = []
    for check in step.checks:
        try:
            data[check.name] = check.convert(source.get(check.name, MISSING))
        except FieldProblem as exc:
            bad.append((check.name, exc.problem))
    if bad:
        return invalid_slot(bad, step.model.status)
    if step.columns:
        return call_columns_one(step, data)
    if step.batch:
        return call_batch_one(step, data)
    return call_record(step, data, results)


def run_single(model: Model, data: Mapping[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """``Model.execute``: validate ``data`` for one model, run it, store its slot in ``results``."""
    slot = score_one(single_step(model), data, results)
    results.setdefault(model.name, {})[model.version] = slot
    return results
