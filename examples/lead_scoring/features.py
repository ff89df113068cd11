"""The input fields the lead models declare, and the feature preparation shared by training and scoring.

Training converts raw lead columns with the same rules mlsm applies before a model runs, so a model sees the
same typed frame in training and in production.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlsm import Field
from mlsm.fields import FieldCheck

CATEGORICAL = ["Lead Origin", "Lead Source", "Last Activity", "What is your current occupation"]
NUMERIC = ["TotalVisits", "Total Time Spent on Website", "Page Views Per Visit"]

FIELDS = {
    "Lead Origin": Field(str, required=False),
    "Lead Source": Field(str, required=False),
    "Do Not Email": Field(bool, required=False),
    "TotalVisits": Field(int, ge=0, required=False),
    "Total Time Spent on Website": Field(int, ge=0),
    # a bound the models need: gradient boosting works in float32, which overflows above ~3.4e38 (`mlsm test` found it)
    "Page Views Per Visit": Field(float, ge=0, le=10_000, required=False),
    "Last Activity": Field(str, required=False),
    "What is your current occupation": Field(str, required=False),
}

# a form left at its default says nothing about the lead
PLACEHOLDERS = {"Select"}


def typed_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw string columns converted by mlsm's field rules (for training); invalid values become missing."""
    columns = {}
    for name, spec in FIELDS.items():
        result = FieldCheck(name, spec).convert_column(raw[name].tolist(), len(raw))
        values = pd.Series(result.values, dtype=object)
        values[result.missing] = None
        values[list(result.problems)] = None
        columns[name] = values
    return pd.DataFrame(columns)


#: Frames up to this many rows (a real-time group) are prepared value by value; larger ones column by column.
SMALL_FRAME = 256


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Model input from a typed frame: placeholders and casing cleaned, numbers as floats, flags as 0/1.

    The rules are :func:`prepare_columns`' (training's). Pandas costs about 0.1 ms per column operation whatever the
    size, so a small frame (a real-time group) is prepared value by value instead, with the same rules and the same
    string kernels, for the column types mlsm gives a model (other types go through the pandas expressions);
    ``tests/test_example_inference.py`` checks both give equal frames.
    """
    if len(frame) > SMALL_FRAME:
        return prepare_columns(frame)
    out: dict[str, pd.Series] = {}
    for names, rule, small_rule in (
        (CATEGORICAL, _categorical, _small_categorical),
        (NUMERIC, _numeric, _small_numeric),
        (["Do Not Email"], _flag, _small_flag),
    ):
        for name in names:
            column = small_rule(frame[name])
            out[name] = rule(frame[name]) if column is None else column
    return pd.DataFrame(out, index=frame.index)


def prepare_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`prepare` column by column with pandas (what training ran, and the definition of the rules)."""
    out = {name: _categorical(frame[name]) for name in CATEGORICAL}
    out.update({name: _numeric(frame[name]) for name in NUMERIC})
    out["Do Not Email"] = _flag(frame["Do Not Email"])
    return pd.DataFrame(out, index=frame.index)


def _categorical(values: pd.Series) -> pd.Series:
    values = values.astype(object)
    cleaned = values.where(values.notna() & ~values.isin(PLACEHOLDERS), "missing").astype(str).str.strip().str.title()
    return cleaned.astype(object)


def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype(np.float64)


def _flag(values: pd.Series) -> pd.Series:
    return (values.astype(object) == True).astype(np.float64)  # noqa: E712 - NA is not True


def _small_categorical(values: pd.Series) -> pd.Series | None:
    """``_categorical`` value by value for pandas text columns (None for other types). ``.str.strip().str.title()`` of
    pandas 3 strings are pyarrow's ``utf8_trim_whitespace`` and ``utf8_title``, so those very kernels do it here."""
    if not _ARROW_STRINGS or not isinstance(values.dtype, pd.StringDtype):
        return None
    kept = ["missing" if pd.isna(v) or v in PLACEHOLDERS else str(v) for v in values.tolist()]
    cleaned = pc.utf8_title(pc.utf8_trim_whitespace(pa.array(kept, pa.large_string()))).to_pylist()
    return pd.Series(cleaned, index=values.index, dtype=object)


def _small_numeric(values: pd.Series) -> pd.Series | None:
    """``_numeric`` for the numeric columns mlsm gives (int64, float64, and their nullable forms)."""
    if values.dtype.kind not in "iuf":  # numpy ints and floats, and pandas' Int64/Float64 (their kind is i/f too)
        return None
    return pd.Series(values.to_numpy(dtype=np.float64, na_value=np.nan), index=values.index)


def _small_flag(values: pd.Series) -> pd.Series | None:
    """``_flag`` for bool columns, and nullable booleans whose missing values are not True."""
    if values.dtype == bool:
        return pd.Series(values.to_numpy(dtype=np.float64), index=values.index)
    if isinstance(values.dtype, pd.BooleanDtype):
        return pd.Series(values.to_numpy(dtype=np.float64, na_value=0.0), index=values.index)
    return None


def _uses_arrow_strings() -> bool:
    """True when pandas' ``astype(str)`` gives pyarrow-backed strings (pandas 3 with pyarrow), whose ``.str``
    methods the small path reproduces; otherwise every frame takes the pandas expressions."""
    text = pd.Series(["a"], dtype=object).astype(str)
    return type(text.array).__name__ == "ArrowStringArray"


_ARROW_STRINGS = _uses_arrow_strings()
