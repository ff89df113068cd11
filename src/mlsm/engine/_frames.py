"""What batch models receive: a pandas DataFrame of their declared fields, typed, missing ints and bools as pandas'
NA (``batch=True``); or, for ``batch="columns"``, a dict of numpy arrays by field name, missing values NaN as
``pandas.read_csv`` gives them (an int field with a missing value is float64, a bool field with one is ``object``;
str and other fields are ``object``), with no DataFrame built at all.

pandas is imported on first use: a model set without frame models never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlsm.fields import ColumnResult

if TYPE_CHECKING:
    from mlsm.engine._plan import Step

__all__ = ["arrays_from_columns", "arrays_from_record", "frame_from_columns", "frame_from_record", "own_copy"]

_NAN = float("nan")


def frame_from_columns(step: Step, converted: list[ColumnResult], rows: Sequence[int], length: int) -> Any:
    """The DataFrame of ``step``'s fields for the given ``rows`` of a chunk of ``length`` converted columns."""
    import numpy as np

    take = None if len(rows) == length else np.asarray(rows, dtype=np.intp)
    columns = {}
    for name, i in zip(step.names, step.slots):
        col = converted[i]
        values = col.values if take is None else col.values[take]
        missing = col.missing if take is None else col.missing[take]
        columns[name] = (values, missing)
    return _frame(columns, len(rows))


def frame_from_record(step: Step, data: dict[str, Any]) -> Any:
    """The one-row DataFrame of ``step``'s fields from one record's converted ``data``."""
    columns = {}
    for check in step.checks:
        col = check.from_values([data[check.name]])
        columns[check.name] = (col.values, col.missing)
    return _frame(columns, 1)


def arrays_from_columns(step: Step, converted: list[ColumnResult], rows: Sequence[int], length: int) -> dict[str, Any]:
    """The column arrays of ``step``'s fields for the given ``rows`` of a chunk (new arrays: a model may change
    them)."""
    import numpy as np

    take = None if len(rows) == length else np.asarray(rows, dtype=np.intp)
    arrays: dict[str, Any] = {}
    for name, i in zip(step.names, step.slots):
        col = converted[i]
        values = col.values.copy() if take is None else col.values[take]
        missing = col.missing if take is None else col.missing[take]
        if missing.any():
            kind = values.dtype.kind
            if kind in "iuf":
                values = values.astype(np.float64)
            elif kind != "O":
                values = values.astype(object)
            values[missing] = _NAN
        arrays[name] = values
    return arrays


def arrays_from_record(step: Step, data: dict[str, Any]) -> dict[str, Any]:
    """The one-row column arrays of ``step``'s fields from one record's converted ``data``."""
    return {check.name: _one(check.kind, data[check.name]) for check in step.checks}


def _one(kind: type, value: Any) -> Any:
    import numpy as np

    if value is None:
        return np.array([_NAN], dtype=np.float64 if kind is int or kind is float else object)
    if kind is float:
        return np.array([value], dtype=np.float64)
    if kind is int:
        return np.array([value], dtype=np.int64)
    if kind is bool:
        return np.array([value], dtype=bool)
    array = np.empty(1, dtype=object)
    array[0] = value
    return array


def own_copy(frame: Any) -> Any:
    """A copy of a shared frame for one model: shallow under pandas' copy-on-write (the default from pandas 3),
    where changing it copies what changes; deep otherwise, where a shallow copy would share changes."""
    import pandas as pd

    cow = int(pd.__version__.split(".", 1)[0]) >= 3 or pd.options.mode.copy_on_write is True
    return frame.copy(deep=not cow)


def _frame(columns: dict[str, tuple[Any, Any]], length: int) -> Any:
    import pandas as pd

    data: dict[str, Any] = {}
    for name, (values, missing) in columns.items():
        kind = values.dtype.kind
        if kind in "ib" and missing.any():
            # a missing int or bool is pandas' NA, keeping the column's declared type
            array_type = pd.arrays.IntegerArray if kind == "i" else pd.arrays.BooleanArray
            data[name] = array_type(values, missing.copy())
        else:
            data[name] = values
    return pd.DataFrame(data, index=pd.RangeIndex(length))
