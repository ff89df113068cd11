"""Golden files: recorded inputs and the outputs a model gave for them, compared again on every ``mlsm test``.

They catch a new version of a model silently changing its scores. One JSON file per model, named
``<name>@<version>.json``, in a ``golden/`` folder beside the models file (so it lives in the model's repository)
or in the folder ``--golden`` names::

    {
      "model": "gbm@1.0",
      "mlsm": "0.1.0",
      "tolerance": {"rel": 1e-06, "abs": 1e-09},
      "cases": [
        {"id": "7927b2df", "input": {"TotalVisits": "3", "Lead Origin": "API"}, "output": {"score": 0.4312}},
        ...
      ]
    }

``input`` is a flat record as a run reads it (raw values, converted by the fields as in a run); ``output`` is the
model's result without ``_status``. Numbers match when ``math.isclose(actual, expected, rel_tol=rel,
abs_tol=abs)``; everything else must be equal. Edit ``tolerance`` in the file to loosen or tighten it.
``mlsm test MODELS --record-golden`` writes the files (from ``--golden-input FILE`` rows, or generated inputs).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsm.engine import Engine, describe_error
from mlsm.lifecycle.preflight import upstream_of
from mlsm.models import Model

__all__ = [
    "DEFAULT_TOLERANCE",
    "GOLDEN_DIR",
    "GoldenCheck",
    "GoldenFileInvalid",
    "check_golden",
    "compare_output",
    "golden_path",
    "read_golden",
    "record_golden",
    "score_cases",
]

#: The folder, beside a models file, where its golden files live.
GOLDEN_DIR = "golden"
#: The tolerance written into new golden files.
DEFAULT_TOLERANCE = {"rel": 1e-6, "abs": 1e-9}


class GoldenFileInvalid(ValueError):
    """Internal signal: a golden file cannot be read; the message says which and why."""


def golden_path(folder: Path, model: Model) -> Path:
    """Where ``model``'s golden file is in ``folder``: ``<name>@<version>.json`` (unsafe characters as ``_``)."""
    return folder / (re.sub(r"[^A-Za-z0-9._@-]", "_", model.key) + ".json")


def read_golden(path: Path) -> dict[str, Any]:
    """A golden file's content, checked; ``GoldenFileInvalid`` naming the file and the problem."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GoldenFileInvalid(f"golden file {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise GoldenFileInvalid(f'golden file {path} must be an object with a "cases" list')
    tolerance = data.get("tolerance", DEFAULT_TOLERANCE)
    if not (
        isinstance(tolerance, dict)
        and set(tolerance) <= {"rel", "abs"}
        and all(isinstance(v, (int, float)) and v >= 0 for v in tolerance.values())
    ):
        raise GoldenFileInvalid(f'golden file {path}: "tolerance" must be like {{"rel": 1e-06, "abs": 1e-09}}')
    for number, case in enumerate(data["cases"], 1):
        if not (
            isinstance(case, dict) and isinstance(case.get("input"), dict) and isinstance(case.get("output"), dict)
        ):
            raise GoldenFileInvalid(f'golden file {path}: case {number} needs an "input" and an "output" object')
    return data


def score_cases(model: Model, models: Sequence[Model], records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``model``'s result slot for each record, scored as one batch by an engine with its upstream models."""
    engine = Engine([*upstream_of(model, models), model])
    names = engine.input_fields
    columns = {name: [record.get(name) for record in records] for name in names}
    return [results[model.name][model.version] for results in engine.score_columns(columns, len(records))]


def compare_output(expected: Any, actual: Any, rel: float, abs_: float, where: str = "") -> str | None:
    """The first difference between two outputs (``None`` when they match within the tolerance)."""
    label = where or "output"
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None:
        return None if expected == actual and type(expected) is type(actual) else _differs(label, expected, actual)
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_):
            return None
        return _differs(label, expected, actual)
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected:
            if key not in actual:
                return f"{where + '.' if where else ''}{key}: missing (expected {_short(expected[key])})"
            found = compare_output(expected[key], actual[key], rel, abs_, f"{where + '.' if where else ''}{key}")
            if found:
                return found
        extra = [key for key in actual if key not in expected]
        if extra:
            return f"{where + '.' if where else ''}{extra[0]}: not expected (got {_short(actual[extra[0]])})"
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{label}: expected {len(expected)} items, got {len(actual)}"
        for index, (left, right) in enumerate(zip(expected, actual)):
            found = compare_output(left, right, rel, abs_, f"{label}[{index}]")
            if found:
                return found
        return None
    return None if expected == actual else _differs(label, expected, actual)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _differs(label: str, expected: Any, actual: Any) -> str:
    return f"{label}: expected {_short(expected)}, got {_short(actual)}"


@dataclass
class GoldenCheck:
    """The outcome of comparing a model with its golden file."""

    path: Path
    cases: int = 0
    mismatches: list[str] = field(default_factory=list)  # one line per differing case

    @property
    def passed(self) -> bool:
        return not self.mismatches

    @property
    def summary(self) -> str:
        """``ok 20/20`` or ``FAIL 3/20``, for the test table."""
        if self.passed:
            return f"ok {self.cases}/{self.cases}"
        return f"FAIL {len(self.mismatches)}/{self.cases}"


def check_golden(model: Model, models: Sequence[Model], path: Path) -> GoldenCheck:
    """Score the recorded inputs of ``path`` again and compare with the recorded outputs."""
    data = read_golden(path)
    tolerance = {**DEFAULT_TOLERANCE, **data.get("tolerance", {})}
    cases = data["cases"]
    result = GoldenCheck(path, len(cases))
    if not cases:
        return result
    slots = score_cases(model, models, [case["input"] for case in cases])
    for number, (case, slot) in enumerate(zip(cases, slots), 1):
        name = f"case {number}" + (f" (id {case['id']})" if case.get("id") is not None else "")
        if "_error" in slot:
            result.mismatches.append(f"{name}: expected an output, got error: {describe_error(slot)}")
            continue
        actual = {key: value for key, value in slot.items() if key != "_status"}
        found = compare_output(case["output"], actual, tolerance["rel"], tolerance["abs"])
        if found:
            result.mismatches.append(f"{name}: {found}")
    return result


def record_golden(
    model: Model,
    models: Sequence[Model],
    records: Sequence[dict[str, Any]],
    path: Path,
    *,
    ids: Sequence[Any] | None = None,
) -> tuple[int, int]:
    """Write ``path`` from ``model``'s outputs on ``records``; returns (cases written, records skipped because
    the model gave an error on them). An existing file's tolerance is kept."""
    from mlsm._version import __version__

    tolerance = dict(DEFAULT_TOLERANCE)
    if path.exists():
        try:
            tolerance.update(read_golden(path).get("tolerance", {}))
        except GoldenFileInvalid:
            pass
    slots = score_cases(model, models, records)
    cases = []
    for index, (record, slot) in enumerate(zip(records, slots)):
        if "_error" in slot:
            continue
        case: dict[str, Any] = {}
        if ids is not None:
            case["id"] = ids[index]
        case["input"] = record
        case["output"] = {key: value for key, value in slot.items() if key != "_status"}
        cases.append(case)
    head = {"model": model.key, "mlsm": __version__, "tolerance": tolerance}
    lines = ["{"]
    lines += [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in head.items()]
    lines.append('  "cases": [')
    lines += [
        "    " + json.dumps(case, ensure_ascii=False, allow_nan=False) + ("," if i < len(cases) - 1 else "")
        for i, case in enumerate(cases)
    ]
    lines += ["  ]", "}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return len(cases), len(records) - len(cases)
