"""The input fields the lead models declare, and the feature preparation shared by training and scoring.

Training converts raw lead columns with the same rules mlsm applies before a model runs, so a model sees the
same typed frame in training and in production.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    """Model input from a typed frame: placeholders and casing cleaned, numbers as floats, flags as 0/1."""
    out = {}
    for name in CATEGORICAL:
        values = frame[name].astype(object)
        cleaned = (
            values.where(values.notna() & ~values.isin(PLACEHOLDERS), "missing").astype(str).str.strip().str.title()
        )
        out[name] = cleaned.astype(object)
    for name in NUMERIC:
        out[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    out["Do Not Email"] = (frame["Do Not Email"].astype(object) == True).astype(np.float64)  # noqa: E712 - NA is not True
    return pd.DataFrame(out, index=frame.index)
