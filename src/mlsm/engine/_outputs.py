"""What a model may return, and its conversion to plain JSON-safe Python.

A result slot is a dict of string keys to JSON values with finite numbers. numpy scalars and arrays, and tuples,
are converted (scikit-learn models return numpy values); anything else is a bad output, reported in the model's
own slot so that no other model or record is affected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["BadOutput", "clean_result", "clean_value"]

_SCALARS = (str, int, bool, type(None))


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
    if not isinstance(output, Mapping):
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
