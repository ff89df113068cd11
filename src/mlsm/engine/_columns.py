"""The chunk path: ``length`` rows given as columns, each field's column converted once, then each model in turn on
its valid rows (a batch model once on a DataFrame of them, or on a dict of their column arrays, a per-record model
row by row)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlsm.engine._calls import call_batch, call_columns, call_record
from mlsm.engine._frames import arrays_from_columns, frame_from_columns, own_copy
from mlsm.engine._slots import invalid_slot
from mlsm.fields import ColumnResult, FieldCheck

if TYPE_CHECKING:
    from mlsm.engine._plan import Step

__all__ = ["score_columns"]


def score_columns(
    checks: Sequence[FieldCheck],
    steps: Sequence[Step],
    columns: Mapping[str, Any],
    length: int,
    on_converted: Callable[[Sequence[FieldCheck], Sequence[ColumnResult]], None] | None = None,
) -> list[dict[str, Any]]:
    """Score ``length`` rows of ``columns`` (Arrow arrays or lists by field name) with planned ``steps``; one
    ``{name: {version: slot}}`` per row. ``on_converted`` sees every converted column once (the drift profile)."""
    converted = [check.convert_column(columns.get(check.name), length) for check in checks]
    if on_converted is not None:
        on_converted(checks, converted)
    rows: list[dict[str, Any]] = [{} for _ in range(length)]
    py_cache: dict[int, list[Any]] = {}
    frames: dict[tuple[int, ...], Any] = {}  # batch models reading the same fields share one frame build
    seen_names: set[str] = set()
    for step in steps:
        bad = _problems_by_row(step, converted)
        valid = [r for r in range(length) if r not in bad] if bad else range(length)
        if step.columns:
            slots = call_columns(step, arrays_from_columns(step, converted, valid, length), len(valid))
        elif step.batch:
            shape = tuple(step.slots)  # the same fields: the same valid rows, the same frame
            if shape not in frames:
                frames[shape] = frame_from_columns(step, converted, valid, length)
            # each model gets its own copy (shallow under copy-on-write): one model's changes never reach another
            slots = call_batch(step, own_copy(frames[shape]), len(valid))
        else:
            slots = _record_slots(step, converted, py_cache, rows, valid, bad, length)
        if bad:
            slots = _with_invalid(step, slots, valid, bad, length)
        _store(rows, step, slots, seen_names)
    return rows


def _problems_by_row(step: Step, converted: list[ColumnResult]) -> dict[int, list[tuple[str, str]]]:
    """The ``(field, problem)`` pairs of every row where some field of ``step`` is invalid."""
    bad: dict[int, list[tuple[str, str]]] = {}
    for name, i in zip(step.names, step.slots):
        for row, problem in converted[i].problems.items():
            bad.setdefault(row, []).append((name, problem))
    return bad


def _record_slots(
    step: Step,
    converted: list[ColumnResult],
    py_cache: dict[int, list[Any]],
    rows: list[dict[str, Any]],
    valid: Sequence[int],
    bad: Mapping[int, Any],
    length: int,
) -> list[dict[str, Any]]:
    """A per-record model's slots for the ``valid`` rows, called row by row (columns as Python values are made
    once per field and chunk, in ``py_cache``)."""
    for i in step.slots:
        if i not in py_cache:
            py_cache[i] = converted[i].py_values()
    data_rows: Iterable[tuple[Any, ...]]
    data_rows = zip(*[py_cache[i] for i in step.slots]) if step.slots else ((),) * length
    if bad:
        data_rows = (values for row, values in enumerate(data_rows) if row not in bad)
    names = step.names
    call = call_record
    return [call(step, dict(zip(names, values)), rows[row]) for row, values in zip(valid, data_rows)]


def _with_invalid(
    step: Step, slots: list[dict[str, Any]], valid: Sequence[int], bad: Mapping[int, list[tuple[str, str]]], length: int
) -> list[dict[str, Any]]:
    """Every row's slot: the valid rows' ``slots`` in place, an invalid-input slot for each row in ``bad``."""
    full: list[Any] = [None] * length
    for row, slot in zip(valid, slots):
        full[row] = slot
    for row, problems in bad.items():
        full[row] = invalid_slot(problems, step.model.status)
    return full


def _store(rows: list[dict[str, Any]], step: Step, slots: list[dict[str, Any]], seen_names: set[str]) -> None:
    """Put each row's slot of ``step`` into that row's results (``seen_names``: model names already stored)."""
    name, version = step.model.name, step.model.version
    if name in seen_names:
        for results, slot in zip(rows, slots):
            results[name][version] = slot
    else:
        seen_names.add(name)
        for results, slot in zip(rows, slots):
            results[name] = {version: slot}
