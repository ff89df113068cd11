"""The input fields the lead models declare, and the feature preparation shared by training and scoring.

Training converts raw lead columns with the same rules mlsm applies before a model runs, so a model sees the
same typed frame in training and in production.
"""

from __future__ import annotations

from typing import Any

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


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Model input from a typed frame: placeholders and casing cleaned, numbers as floats, flags as 0/1 (what
    training runs, column by column with pandas; the definition of the rules)."""
    out = {name: _categorical(frame[name]) for name in CATEGORICAL}
    out.update({name: _numeric(frame[name]) for name in NUMERIC})
    out["Do Not Email"] = _flag(frame["Do Not Email"])
    return pd.DataFrame(out, index=frame.index)


def prepare_arrays(columns: dict[str, Any]) -> dict[str, np.ndarray]:
    """:func:`prepare` on the column arrays a ``batch="columns"`` model receives (missing values NaN), with no
    pandas: the same rules and, for text, the same string kernels pandas uses (pyarrow's under pandas 3, Python's
    ``str`` methods otherwise); ``tests/test_example_features.py`` checks both give equal columns."""
    out: dict[str, np.ndarray] = {}
    for name in CATEGORICAL:
        kept = ["missing" if v is None or v != v or v in PLACEHOLDERS else str(v) for v in columns[name].tolist()]
        unseen = [value for value in dict.fromkeys(kept) if value not in _CLEANED]
        if unseen:
            if len(_CLEANED) > 100_000:  # free text would grow it without end
                _CLEANED.clear()
            _CLEANED.update(zip(unseen, _clean_texts(unseen)))
        text = np.empty(len(kept), dtype=object)
        text[:] = [_CLEANED[value] for value in kept]
        out[name] = text
    for name in NUMERIC:
        out[name] = np.asarray(columns[name], dtype=np.float64)
    flags = columns["Do Not Email"]
    out["Do Not Email"] = (flags if flags.dtype == bool else flags == True).astype(np.float64)  # noqa: E712
    return out


_CLEANED: dict[str, str] = {}  # text -> cleaned text: categories repeat, and one kernel call costs ~10 us


def _clean_texts(texts: list[str]) -> list[str]:
    if _ARROW_STRINGS:
        cleaned: list[str] = pc.utf8_title(pc.utf8_trim_whitespace(pa.array(texts, pa.large_string()))).to_pylist()
        return cleaned
    return [text.strip().title() for text in texts]


def _categorical(values: pd.Series) -> pd.Series:
    values = values.astype(object)
    cleaned = values.where(values.notna() & ~values.isin(PLACEHOLDERS), "missing").astype(str).str.strip().str.title()
    return cleaned.astype(object)


def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype(np.float64)


def _flag(values: pd.Series) -> pd.Series:
    return (values.astype(object) == True).astype(np.float64)  # noqa: E712 - NA is not True


def _uses_arrow_strings() -> bool:
    """True when pandas' ``astype(str)`` gives pyarrow-backed strings (pandas 3 with pyarrow), whose ``.str``
    methods are pyarrow's kernels; otherwise they are Python's ``str`` methods."""
    text = pd.Series(["a"], dtype=object).astype(str)
    return type(text.array).__name__ == "ArrowStringArray"


_ARROW_STRINGS = _uses_arrow_strings()
