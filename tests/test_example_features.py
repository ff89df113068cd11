"""The example's ``prepare_arrays`` (what its estimator models score, from the column arrays mlsm gives) equals
training's ``prepare`` (pandas, on the DataFrame a ``batch=True`` model gets) for the same leads: generated ones
with their mess, and Hypothesis ones (unseen categories, text where Python's and pyarrow's string kernels differ,
missing values), in groups and one at a time."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlsm import Engine, Model
from mlsm.demo import _module

from .conftest import EXAMPLE

FEATURES: ModuleType = _module(EXAMPLE, "features")


class Capture:
    """An engine with a frame model and a columns model on the example's fields, keeping what each receives."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.arrays: list[dict[str, Any]] = []

        def frame_model(frame: pd.DataFrame) -> pd.DataFrame:
            self.frames.append(frame)
            return pd.DataFrame({"n": range(len(frame))})

        def columns_model(columns: dict[str, Any]) -> dict[str, Any]:
            self.arrays.append(columns)
            return {"n": list(range(len(columns["TotalVisits"])))}

        fields = FEATURES.FIELDS
        self.engine = Engine(
            [Model("f", fields, "1", frame_model, batch=True), Model("c", fields, "1", columns_model, batch="columns")]
        )

    def check(self) -> None:
        for frame, arrays in zip(self.frames, self.arrays):
            want = FEATURES.prepare(frame)
            got = FEATURES.prepare_arrays(arrays)
            assert list(got) == list(want.columns)
            for name in want.columns:
                expected = want[name].to_numpy()
                if expected.dtype == object:
                    assert got[name].tolist() == expected.tolist(), name
                else:
                    assert np.array_equal(got[name], expected, equal_nan=True), name
        self.frames.clear()
        self.arrays.clear()


def test_generated_leads_prepare_alike_in_a_group_and_one_at_a_time() -> None:
    capture = Capture()
    raw = _module(EXAMPLE, "leads").generate_leads(200, seed=11)
    records = [{k: v for k, v in row.items() if v == v} for row in raw.to_dict(orient="records")]
    capture.engine.score_columns({name: [r.get(name) for r in records] for name in FEATURES.FIELDS}, len(records))
    for record in records[:20]:
        capture.engine.score(record)
    assert len(capture.frames) > 15
    capture.check()


CATEGORIES = ["Google", "google", " Direct Traffic ", "Select", " Select", "", "Olark Chat", "Bing", "Reference"]
# where Python's str.strip/str.title and pandas' (pyarrow's) kernels disagree
TRICKY = ["ßa", "ǆemal", "ΣΑΣ", "ﬁne", "ŉa", "they're", "\x1cGoogle\x1f", "\u00a0google\u2028", "\x85Bing"]
texts = st.one_of(st.none(), st.sampled_from(CATEGORIES), st.sampled_from(TRICKY), st.text(max_size=12))
lead = st.fixed_dictionaries(
    {
        "Lead Origin": texts,
        "Lead Source": texts,
        "Last Activity": texts,
        "What is your current occupation": texts,
        "Do Not Email": st.one_of(st.none(), st.booleans(), st.sampled_from(["yes", "No", "1"])),
        "TotalVisits": st.one_of(st.none(), st.integers(0, 300)),
        "Total Time Spent on Website": st.integers(0, 5000),
        "Page Views Per Visit": st.one_of(st.none(), st.floats(0, 10_000, allow_nan=False)),
    }
)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(lead, min_size=1, max_size=20))
def test_odd_text_and_missing_values_prepare_alike(records: list[dict[str, Any]]) -> None:
    capture = Capture()
    records = [{k: v for k, v in record.items() if v is not None} for record in records]
    capture.engine.score_columns({name: [r.get(name) for r in records] for name in FEATURES.FIELDS}, len(records))
    capture.engine.score(records[0])
    capture.check()
