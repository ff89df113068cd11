"""Result slots: what a model may return, its conversion to plain JSON-safe Python, and the slot of every failure.

A result slot is a dict of string keys to JSON values with finite numbers, plus the model's ``_status``. numpy
scalars and arrays, and tuples, are converted (scikit-learn models return numpy values); anything else is a bad
output. A model that cannot produce a result gets an error slot instead: ``_error`` (one line), ``_errors`` (the
structured problems) and ``_status``. Either way the slot is the model's own, so no other model or record is
affected.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mlsm._paths import is_user_file
from mlsm.errors import ModelTimeout
from mlsm.fields import MISSING_REQUIRED

__all__ = [
    "BadOutput",
    "array_slots",
    "clean_result",
    "clean_value",
    "describe_error",
    "error_slot",
    "exception_slot",
    "frame_slots",
    "invalid_slot",
    "output_slot",
]

_SCALARS = (str, int, bool, type(None))


# -- error slots --------------------------------------------------------------------------------------------------


def error_slot(message: str, errors: list[dict[str, Any]] | None = None, *, status: str | None) -> dict[str, Any]:
    """A result slot for a model that could not produce a result: ``_error`` (``message``), ``_errors`` (the
    structured problems; by default one without a field) and the model's ``_status`` (left out when None)."""
    slot: dict[str, Any] = {"_error": message}
    slot["_errors"] = errors if errors is not None else [{"field": None, "problem": message}]
    if status is not None:
        slot["_status"] = status
    return slot


def describe_error(slot: Mapping[str, Any]) -> str:
    """One line for people about an error slot: ``ValueError: bad value (models.py:24)`` for an exception (its
    type, message and place), else the slot's ``_error`` itself."""
    errors = slot.get("_errors")
    first = errors[0] if isinstance(errors, list) and len(errors) == 1 and isinstance(errors[0], dict) else {}
    kind = first.get("type")
    if not kind:
        return str(slot.get("_error"))
    message = " ".join(str(first.get("problem", "")).split())
    text = f"{kind}: {message}" if message else str(kind)
    return text + (f" ({first['at']})" if first.get("at") else "")


def invalid_slot(problems: list[tuple[str, str]], status: str) -> dict[str, Any]:
    """The slot of a model whose fields are missing or invalid, from ``(field, problem)`` pairs.

    A required field without a value reads as the original package wrote it (``Expected 'data' input 'NAME' not
    found``); the problems the original never checked follow as ``invalid input: field 'x': ...``; all joined by
    ``"; "``, missing fields first.
    """
    parts = [f"Expected 'data' input '{name}' not found" for name, problem in problems if problem == MISSING_REQUIRED]
    invalid = [f"field {name!r}: {problem}" for name, problem in problems if problem != MISSING_REQUIRED]
    if invalid:
        parts.append("invalid input: " + "; ".join(invalid))
    errors = [{"field": name, "problem": problem} for name, problem in problems]
    return error_slot("; ".join(parts), errors, status=status)


def exception_slot(exc: BaseException, status: str) -> dict[str, Any]:
    """The slot of a model whose call raised: ``_error`` is ``str(exc)`` exactly, as the original package wrote it;
    ``_errors`` adds the exception's ``type`` and where it was raised (``at``, ``file:line``)."""
    if isinstance(exc, ModelTimeout):  # raised by mlsm, not the model: its place in our code says nothing
        return error_slot(str(exc), status=status)
    try:
        message = str(exc)
    except Exception:  # a broken __str__ is the model's failure too, never the engine's
        message = f"<{type(exc).__name__} that cannot be shown>"
    problem = {"field": None, "problem": message, "type": type(exc).__name__, "at": _raised_at(exc)}
    return error_slot(message, [problem], status=status)


def _raised_at(exc: BaseException) -> str | None:
    """``file:line`` of the deepest frame of the model's own code in the traceback (not mlsm, the standard
    library or installed packages), else of the deepest frame; None without a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    chosen = next((frame for frame in reversed(frames) if is_user_file(frame.filename)), frames[-1])
    return f"{chosen.filename.rsplit('/', 1)[-1]}:{chosen.lineno}"


# -- what a per-record model returns ------------------------------------------------------------------------------


class BadOutput(Exception):
    """Internal signal: a model returned something that cannot be stored."""


def clean_value(value: Any, where: str) -> Any:
    """``value`` as plain JSON-safe Python, or ``BadOutput`` naming ``where`` it went wrong."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is float:
        if value - value == 0.0:  # finite (inf - inf and nan - nan are nan)
            return value
        raise BadOutput(f"{where}: {value!r} is not allowed (numbers must be finite)")
    if isinstance(value, np.generic):
        return clean_value(value.item(), where)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadOutput(f"{where}: key {key!r} is not a string")
            out[key] = clean_value(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple, np.ndarray)):
        items = value.tolist() if isinstance(value, np.ndarray) else value
        return [clean_value(item, f"{where}[{i}]") for i, item in enumerate(items)]
    if isinstance(value, float):  # float subclasses
        return clean_value(float(value), where)
    if isinstance(value, (int, str)):
        return value
    raise BadOutput(f"{where}: value of type {kind.__name__} is not JSON-serializable")


def clean_result(output: Any) -> dict[str, Any]:
    """A model's dict output made JSON-safe; ``BadOutput`` when it is not a dict or holds bad values."""
    if type(output) is dict:  # the common case, checked without copying first: a per-record model's plain dict
        for key, value in output.items():
            kind = type(value)
            if type(key) is not str or not (kind in _SCALARS or (kind is float and value - value == 0.0)):
                break
        else:
            return output.copy()
    elif not isinstance(output, Mapping):
        raise BadOutput(f"expected a dict, got {type(output).__name__}")
    out: dict[str, Any] = {}
    for key, value in output.items():
        if type(key) is not str and not isinstance(key, str):
            raise BadOutput(f"key {key!r} is not a string")
        kind = type(value)
        if kind in _SCALARS or (kind is float and value - value == 0.0):
            out[key] = value
        else:
            out[key] = clean_value(value, f"key {key!r}")
    return out


def output_slot(output: Any, status: str) -> dict[str, Any]:
    """The slot of a per-record model's ``output``: cleaned (numpy values, nested data) with ``_status``, or the
    error slot saying why it cannot be stored."""
    try:
        slot = clean_result(output)
    except BadOutput as exc:
        return error_slot(f"bad output: {exc}", status=status)
    slot["_status"] = status
    return slot


# -- what a batch model returns -----------------------------------------------------------------------------------


def frame_slots(output: Any, count: int, status: str) -> list[dict[str, Any]]:
    """One slot per row of a batch model's ``output`` for ``count`` input rows: its columns' values with
    ``_status``; every row an error slot when the output is not a DataFrame of ``count`` rows with string column
    names, one row an error slot when its value cannot be stored."""
    import pandas as pd

    if not isinstance(output, pd.DataFrame):
        message = f"bad output: expected a pandas DataFrame with {count} rows, got {type(output).__name__}"
        return [error_slot(message, status=status) for _ in range(count)]
    if len(output) != count:
        message = f"bad output: expected a DataFrame with {count} rows (one per input row), got {len(output)}"
        return [error_slot(message, status=status) for _ in range(count)]
    keys = list(output.columns)
    bad_key = next((key for key in keys if not isinstance(key, str)), None)
    if bad_key is not None:
        return [error_slot(f"bad output: column name {bad_key!r} is not a string", status=status) for _ in range(count)]
    row_errors: dict[int, str] = {}
    columns = [_clean_column(key, output[key].to_numpy(), row_errors) for key in keys]
    slots = _slot_builder(tuple(keys))(columns, status, count)
    for row, problem in row_errors.items():
        slots[row] = error_slot(problem, status=status)
    return slots


def array_slots(output: Any, count: int, status: str) -> list[dict[str, Any]]:
    """One slot per row of a ``batch="columns"`` model's ``output`` for ``count`` input rows: a mapping of result
    key -> array or list of ``count`` values (a DataFrame is taken too); every row an error slot when it is not,
    one row an error slot when its value cannot be stored."""
    if not isinstance(output, Mapping):
        if type(output).__name__ == "DataFrame":
            return frame_slots(output, count, status)
        message = f"bad output: expected a dict of result columns with {count} values each, got {type(output).__name__}"
        return [error_slot(message, status=status) for _ in range(count)]
    keys = list(output)
    bad_key = next((key for key in keys if not isinstance(key, str)), None)
    if bad_key is not None:
        return [error_slot(f"bad output: key {bad_key!r} is not a string", status=status) for _ in range(count)]
    arrays = []
    for key in keys:
        value = output[key]
        array = value if isinstance(value, np.ndarray) else None
        if array is None:
            array = np.empty(len(value), dtype=object) if isinstance(value, (list, tuple)) else None
            if array is not None:
                array[:] = value
        if array is None or array.ndim != 1 or len(array) != count:
            got = f"{len(value)} values" if hasattr(value, "__len__") else type(value).__name__
            message = f"bad output: result {key!r} must have {count} values (one per input row), got {got}"
            return [error_slot(message, status=status) for _ in range(count)]
        arrays.append(array)
    row_errors: dict[int, str] = {}
    columns = [_clean_column(key, array, row_errors) for key, array in zip(keys, arrays)]
    slots = _slot_builder(tuple(keys))(columns, status, count)
    for row, problem in row_errors.items():
        slots[row] = error_slot(problem, status=status)
    return slots


def _clean_column(key: str, array: Any, row_errors: dict[int, str]) -> list[Any]:
    """One output column as plain Python values; the first problem of each bad row goes into ``row_errors``."""
    kind = array.dtype.kind
    if kind in "iub":
        values: list[Any] = array.tolist()
        return values
    values = array.tolist()
    if kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            for row in (~finite).nonzero()[0].tolist():
                problem = f"bad output: column {key!r}: {values[row]!r} is not allowed (numbers must be finite)"
                row_errors.setdefault(row, problem)
        return values
    for row, value in enumerate(values):
        try:
            values[row] = clean_value(value, f"column {key!r}")
        except BadOutput as exc:
            row_errors.setdefault(row, f"bad output: {exc}")
    return values


@functools.lru_cache(maxsize=512)
def _slot_builder(keys: tuple[str, ...]) -> Callable[[list[list[Any]], str, int], list[dict[str, Any]]]:
    """A function building one ``{key: value, ..., '_status': status}`` per row from output columns.

    A dict display in a comprehension is several times faster than ``dict(zip(...))`` per row; the source is
    generated from the column names (``repr`` makes any string a safe literal). Pure, so caching is safe.
    """
    if not keys:
        return lambda columns, status, count: [{"_status": status} for _ in range(count)]
    names = [f"a{i}" for i in range(len(keys))]
    items = ", ".join(f"{key!r}: {name}" for key, name in zip(keys, names))
    source = f"lambda columns, status, count: [{{{items}, '_status': status}} for {', '.join(names)}, in zip(*columns)]"
    builder: Callable[[list[list[Any]], str, int], list[dict[str, Any]]] = eval(source)
    return builder
