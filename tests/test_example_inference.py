"""The example's fast path for small groups gives exactly the scores of its scikit-learn pipelines.

Frames come from mlsm's engine, as a model receives them: a group of leads (``score_columns``) and single leads
(``score``), from the example's lead generator (with its mess) and from Hypothesis (unseen categories, odd text,
missing values). For each: ``prepare`` equals training's column-by-column ``prepare_columns``, the compiled feature
step equals the pipeline's, and every model's scores equal ``pipeline.predict_proba(prepare_columns(frame))`` bit
for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlsm import Engine, Model
from mlsm.demo import _module
from mlsm.lifecycle.loader import load_models

from .conftest import EXAMPLE


class Example:
    """The example's modules, its three pipelines and their models, and an engine that hands frames back."""

    def __init__(self) -> None:
        self.models = load_models(str(EXAMPLE / "models.py")).module
        self.features: ModuleType = _module(EXAMPLE, "features")
        self.leads: ModuleType = _module(EXAMPLE, "leads")
        self.batch_models = {m.key: m for m in self.models.MODELS if m.batch}
        self.pipelines = {key: self.models._load(*key.split("@")) for key in self.batch_models}
        self.compiled = {key: self.models.compile_pipeline(p) for key, p in self.pipelines.items()}
        self.frames: list[pd.DataFrame] = []

        def capture(frame: pd.DataFrame) -> pd.DataFrame:
            self.frames.append(frame)
            return pd.DataFrame({"n": range(len(frame))})

        self.engine = Engine([Model("capture", self.features.FIELDS, "1", capture, batch=True)])

    def group(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """The frame a batch model gets for these records scored together (their valid rows)."""
        self.frames.clear()
        columns = {name: [record.get(name) for record in records] for name in self.engine.input_fields}
        self.engine.score_columns(columns, len(records))
        return self.frames[-1] if self.frames else pd.DataFrame()

    def single(self, record: dict[str, Any]) -> pd.DataFrame | None:
        """The one-row frame a batch model gets for this record alone (None when the record is invalid)."""
        self.frames.clear()
        self.engine.score(record)
        return self.frames[-1] if self.frames else None

    def check(self, frame: pd.DataFrame) -> None:
        """Everything the fast path claims, for one frame."""
        reference = self.features.prepare_columns(frame)
        prepared = self.features.prepare(frame)
        pd.testing.assert_frame_equal(prepared, reference, check_exact=True)
        assert list(prepared.dtypes) == list(reference.dtypes)
        for key, model in self.batch_models.items():
            pipeline, compiled = self.pipelines[key], self.compiled[key]
            expected = pipeline.steps[0][1].transform(reference)
            got = compiled.transform(reference)
            assert sp.issparse(got) == sp.issparse(expected)
            assert (got != expected).nnz == 0 if sp.issparse(got) else np.array_equal(got, expected)
            scores = model.fcn(frame)["score"].to_numpy()
            assert np.array_equal(scores, pipeline.predict_proba(reference)[:, 1]), key


@pytest.fixture(scope="module")
def example(example_artifacts: Path) -> Iterator[Example]:
    yield Example()


def test_every_example_pipeline_compiles(example: Example) -> None:
    assert all(compiled is not None for compiled in example.compiled.values())


@pytest.mark.slow
def test_generated_leads_get_the_pipelines_scores_in_groups_and_one_at_a_time(example: Example) -> None:
    raw = example.leads.generate_leads(400, seed=11)
    records = [{k: v for k, v in row.items() if v == v} for row in raw.to_dict(orient="records")]
    for start in (0, 16, 200):  # groups of 16, and one of 200 (still small: the fast path)
        size = 200 if start == 200 else 16
        frame = example.group(records[start : start + size])
        assert len(frame) > size // 2
        example.check(frame)
    singles = [example.single(record) for record in records[:40]]
    assert sum(frame is not None for frame in singles) > 30
    for frame in singles:
        if frame is not None:
            example.check(frame)


def test_a_large_frame_takes_the_pipelines_themselves(example: Example) -> None:
    raw = example.leads.generate_leads(600, seed=12)
    records = [{k: v for k, v in row.items() if v == v} for row in raw.to_dict(orient="records")]
    frame = example.group(records)
    assert len(frame) > example.features.SMALL_FRAME
    example.check(frame)


def test_a_pipeline_of_another_shape_is_not_compiled(example: Example) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    features = example.features
    raw = example.leads.generate_leads(300, seed=3)
    prepared = features.prepare_columns(features.typed_frame(raw))
    other = Pipeline(
        [
            ("features", ColumnTransformer([("n", MinMaxScaler(), ["Total Time Spent on Website"])])),
            ("m", LogisticRegression()),
        ]
    ).fit(prepared, raw["Converted"].astype(int))
    assert example.models.compile_pipeline(other) is None


CATEGORIES = ["Google", "google", " Direct Traffic ", "Select", " Select", "", "Olark Chat", "Bing", "Reference"]
# where Python's str.strip/str.title and pandas' (pyarrow's) kernels disagree: the fast path must be pandas'
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
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(lead, min_size=1, max_size=20))
def test_unseen_categories_odd_text_and_missing_values_get_the_pipelines_scores(
    example: Example, records: list[dict[str, Any]]
) -> None:
    records = [{k: v for k, v in record.items() if v is not None} for record in records]
    example.check(example.group(records))
    frame = example.single(records[0])
    if frame is not None:
        example.check(frame)
