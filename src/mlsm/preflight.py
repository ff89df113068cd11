"""Preflight tests: run a model on inputs its own fields allow and report whether it copes.

Inputs are generated from the ``Field`` rules: typical values, the bounds, every choice, 0, empty and long and
non-ASCII strings, and ``None`` for optional fields. A model fails when any of them gives an error in its slot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .engine import Engine, run_single
from .fields import MISSING, Field, as_field
from .models import Model, SummaryModel

__all__ = ["PreflightReport", "example_values", "examples_for", "preflight_model"]

_TEXTS = ("lorem ipsum", "a", "Zürich – 東京 ✓", "x" * 300)


@dataclass
class PreflightReport:
    """The outcome of one model's preflight."""

    model: str
    passed: bool
    examples: int
    failures: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (input, error)

    @property
    def first_failure(self) -> str:
        if not self.failures:
            return ""
        data, error = self.failures[0]
        return f"{error} on input {data!r}"


def example_values(spec: Any) -> list[Any]:
    """Values a field allows, edge cases first; ``None`` stands for 'missing' when the field is optional."""
    f: Field = as_field(spec)
    values: list[Any]
    if f.choices is not None:
        values = list(f.choices)
    elif f.type is bool:
        values = [True, False]
    elif f.type in (int, float):
        lo = f.ge if f.ge is not None else None
        hi = f.le if f.le is not None else None
        candidates: list[Any] = [0, 1, -1, 10, 1000, -1000, 2**31]
        if f.type is float:
            candidates += [0.5, -2.25, 1e-9, 1e9]
        if lo is not None:
            candidates += [lo, lo + 1]
        if hi is not None:
            candidates += [hi, hi - 1]
        if lo is not None and hi is not None:
            candidates.append((lo + hi) / 2 if f.type is float else (lo + hi) // 2)
        values = []
        for candidate in candidates:
            if f.type is int and not float(candidate).is_integer():
                continue
            value = f.type(candidate)
            if (lo is not None and value < lo) or (hi is not None and value > hi) or not math.isfinite(value):
                continue
            if value not in values:
                values.append(value)
        if not values and lo is not None:  # bounds that admit no integer, e.g. ge=0.2, le=0.8
            values = [f.type(lo)]
    elif f.type is str:
        values = list(_TEXTS)
    else:
        try:
            values = [f.type()]
        except Exception:
            values = []
    if f.optional:
        values.append(f.default if f.default is not MISSING else None)
    return values


def examples_for(fields: dict[str, Any], count: int | None = None) -> list[dict[str, Any]]:
    """Records that satisfy ``fields``: enough to show every example value of every field at least once."""
    columns = {name: example_values(spec) for name, spec in fields.items()}
    columns = {name: values for name, values in columns.items() if values}
    size = max((len(values) for values in columns.values()), default=1)
    if count is not None:
        size = max(1, count)
    return [{name: values[i % len(values)] for name, values in columns.items()} for i in range(size)]


def preflight_model(model: Model, *, examples: int | None = None, upstream: Sequence[Model] = ()) -> PreflightReport:
    """Run ``model`` on generated inputs; a summary model runs after its ``upstream`` models when given."""
    fields: dict[str, Any] = dict(model.fields)
    engine = None
    if isinstance(model, SummaryModel) and upstream:
        engine = Engine([*upstream, model])
        for each in upstream:
            fields = {**each.fields, **fields}
    elif not isinstance(model, SummaryModel):
        engine = Engine([model])
    records = examples_for(fields, examples)
    if engine is not None and getattr(model, "batch", False):
        columns = {name: [record.get(name) for record in records] for name in fields}
        slots = [results[model.name][model.version] for results in engine.score_columns(columns, len(records))]
    elif engine is not None:
        slots = [engine.score(record)[model.name][model.version] for record in records]
    else:  # a summary model on its own sees no upstream results
        slots = [run_single(model, record, {})[model.name][model.version] for record in records]
    failures = [
        ({name: record.get(name) for name in model.fields}, slot["_error"])
        for record, slot in zip(records, slots)
        if "_error" in slot
    ]
    return PreflightReport(model.key, not failures, len(records), failures)
