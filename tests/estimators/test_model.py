"""``Model.from_estimator``: a fitted pipeline trained on a frame from ``read_csv`` scores every record of that file
as ``predict_proba`` scores its row, one record at a time (the compiled form, no DataFrame) and in chunks (the
estimator itself); results, outputs, joblib artifacts in provenance, a version mismatch, and the fallback for what
does not compile."""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import HealthCheck, given, settings
from sklearn.base import is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlsm import Engine, Field, Model
from mlsm.errors import ModelDefinitionError
from mlsm.estimators import EstimatorNotCompiled, EstimatorScorer
from mlsm.lifecycle.preflight import record_strategy
from mlsm.lifecycle.provenance import collect_provenance

FIELDS = {
    "source": Field(str, required=False),
    "city": Field(str, required=False),
    "visits": Field(int, ge=0, le=500, required=False),
    "seconds": Field(float, ge=0, le=10_000, required=False),
}


def leads_csv(n: int, seed: int) -> str:
    """A CSV of leads with empty cells in every column."""
    rng = np.random.default_rng(seed)
    rows = ["source,city,visits,seconds"]
    for _ in range(n):
        source = rng.choice(["Google", "Direct", "Reference", "Olark", ""], p=[0.4, 0.3, 0.1, 0.1, 0.1])
        city = rng.choice(["Mumbai", "Pune", "Thane", ""], p=[0.5, 0.2, 0.2, 0.1])
        visits = "" if rng.random() < 0.1 else str(int(rng.integers(0, 30)))
        seconds = "" if rng.random() < 0.1 else f"{rng.random() * 2000:.1f}"
        rows.append(f"{source},{city},{visits},{seconds}")
    return "\n".join(rows) + "\n"


def pipeline(final: Any) -> Pipeline:
    columns = ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore"), ["source", "city"]),
            ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["visits", "seconds"]),
        ]
    )
    return Pipeline([("features", columns), ("model", final)])


TRAIN_CSV = leads_csv(800, seed=1)
TRAIN = pd.read_csv(io.StringIO(TRAIN_CSV))
LABELS = (TRAIN["seconds"].fillna(0) > 900) ^ (np.random.default_rng(2).random(len(TRAIN)) < 0.2)
LOGIT = pipeline(LogisticRegression()).fit(TRAIN, LABELS)
FOREST = pipeline(RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0)).fit(
    TRAIN, TRAIN["seconds"].fillna(0) / 100
)


def records(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_every_record_scores_as_predict_proba_scores_its_row_of_the_csv_frame() -> None:
    text = leads_csv(300, seed=3)
    want = LOGIT.predict_proba(pd.read_csv(io.StringIO(text)))[:, 1]
    model = Model.from_estimator("logit", "1", LOGIT, FIELDS, status="active")
    assert model.fcn.compiled and model.takes_columns
    engine = Engine([model])
    one_by_one = [engine.score(record)["logit"]["1"] for record in records(text)]
    assert [set(slot) for slot in one_by_one] == [{"score", "_status"}] * len(want)
    assert np.allclose([slot["score"] for slot in one_by_one], want, rtol=0, atol=1e-9)
    columns = {name: [r[name] for r in records(text)] for name in FIELDS}
    for rows in (len(want), 20):  # a chunk over the small-group size (the estimator), a small group (compiled)
        chunk = engine.score_columns({k: v[:rows] for k, v in columns.items()}, rows)
        assert np.allclose([r["logit"]["1"]["score"] for r in chunk], want[:rows], rtol=0, atol=1e-9)


# final estimators behind the same ColumnTransformer (one-hot, median imputer, scaler); regressors fit the seconds
FINALS: dict[str, Callable[[], Any]] = {
    "logistic": LogisticRegression,
    "decision tree": lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
    "random forest": lambda: RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0),
    "extra trees": lambda: ExtraTreesClassifier(n_estimators=8, max_depth=6, random_state=0),
    "gradient boosting": lambda: GradientBoostingClassifier(n_estimators=15, random_state=0),
    "histogram gradient boosting": lambda: HistGradientBoostingClassifier(max_iter=15),
    "linear regression": LinearRegression,
    "ridge": Ridge,
    "random forest regressor": lambda: RandomForestRegressor(n_estimators=8, max_depth=6, random_state=0),
}
_PATHS: dict[str, tuple[Engine, Engine]] = {}


def paths(name: str) -> tuple[Engine, Engine]:
    """A pipeline as a model scoring one record compiled, and as one scoring everything by the estimator."""
    if name not in _PATHS:
        final = FINALS[name]()
        target = TRAIN["seconds"].fillna(0) / 100 if is_regressor(final) else LABELS
        fitted = pipeline(final).fit(TRAIN, target)
        compiled = Model.from_estimator("m", "1", fitted, FIELDS)
        assert compiled.fcn.compiled, compiled.fcn.description
        _PATHS[name] = (Engine([compiled]), Engine([Model.from_estimator("m", "1", fitted, FIELDS, small_group=0)]))
    return _PATHS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FINALS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=record_strategy({name: [spec] for name, spec in FIELDS.items()}))
def test_compiled_and_estimator_paths_agree_on_any_record_within_the_fields(name: str, record: dict[str, Any]) -> None:
    compiled, estimator = paths(name)
    got, want = compiled.score(record)["m"]["1"], estimator.score(record)["m"]["1"]
    assert set(got) == set(want)
    key = "prediction" if "prediction" in want else "score"
    if key in want:
        assert abs(got[key] - want[key]) <= 1e-9


def test_a_regressor_gives_a_prediction_and_output_names_other_keys() -> None:
    record = {"source": "Google", "city": "", "visits": "3", "seconds": "12.5"}
    forest = Engine([Model.from_estimator("f", "1", FOREST, FIELDS)]).score(record)["f"]["1"]
    assert set(forest) == {"prediction", "_status"}
    both = Model.from_estimator("l", "1", LOGIT, FIELDS, output={"p": "predict_proba", "raw": "decision_function"})
    slot = Engine([both]).score(record)["l"]["1"]
    assert slot["p"] == pytest.approx(1 / (1 + np.exp(-slot["raw"])), abs=1e-12)
    with pytest.warns(EstimatorNotCompiled, match="'predict' of a classifier"):  # labels are not compiled
        labels = Model.from_estimator("l", "2", LOGIT, FIELDS, output="predict")
    label = Engine([labels]).score(record)["l"]["2"]
    assert set(label) == {"prediction", "_status"} and isinstance(label["prediction"], bool)
    with pytest.raises(ModelDefinitionError, match="no method 'transform_me'"):
        Model.from_estimator("l", "3", LOGIT, FIELDS, output="transform_me")


def test_a_joblib_file_is_recorded_in_provenance_and_another_version_refused(tmp_path: Path) -> None:
    path = tmp_path / "logit.joblib"
    joblib.dump(LOGIT, path)
    model = Model.from_estimator("logit", "1", path, FIELDS)
    artifact = collect_provenance([model])["models"]["logit@1"]["artifact"]
    assert artifact["sklearn"] == sklearn.__version__ and artifact["path"] == str(path.resolve())
    assert artifact["sha256"].startswith("sha256:") and len(artifact["sha256"]) == 71
    old = tmp_path / "old.joblib"
    joblib.dump({"pipeline": LOGIT, "sklearn": "0.24.2"}, old)
    with pytest.raises(ModelDefinitionError) as caught:
        Model.from_estimator("logit", "2", old, FIELDS)
    assert str(caught.value) == (
        f"old.joblib was saved with scikit-learn 0.24.2 and this is {sklearn.__version__}: retrain it, or score it "
        "with scikit-learn 0.24.2"
    )
    with pytest.raises(ModelDefinitionError, match="not found"):
        Model.from_estimator("logit", "3", tmp_path / "absent.joblib", FIELDS)


@pytest.mark.slow
def test_what_does_not_compile_is_said_once_and_scored_by_the_estimator() -> None:
    odd = Pipeline(
        [("f", FunctionTransformer(lambda frame: frame[["visits", "seconds"]].fillna(0))), ("m", LogisticRegression())]
    )
    odd.fit(TRAIN, LABELS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = Model.from_estimator("odd", "1", odd, FIELDS)
    assert [w.category for w in caught] == [EstimatorNotCompiled]
    assert "FunctionTransformer" in str(caught[0].message) and not model.fcn.compiled
    record = {"source": "Google", "visits": "4", "seconds": ""}
    want = odd.predict_proba(pd.DataFrame({"source": ["Google"], "city": [np.nan], "visits": [4], "seconds": [np.nan]}))
    assert Engine([model]).score(record)["odd"]["1"]["score"] == pytest.approx(want[0, 1], abs=1e-12)


@pytest.mark.slow
def test_histogram_gradient_boosting_takes_missing_values_as_nan() -> None:
    hgb = pipeline(HistGradientBoostingClassifier(max_iter=20)).fit(TRAIN, LABELS)
    text = leads_csv(60, seed=9)
    want = hgb.predict_proba(pd.read_csv(io.StringIO(text)))[:, 1]
    engine = Engine([Model.from_estimator("h", "1", hgb, FIELDS)])
    got = [engine.score(record)["h"]["1"]["score"] for record in records(text)]
    assert np.allclose(got, want, rtol=0, atol=1e-9)


def test_a_columns_model_gets_numpy_arrays_with_nan_and_no_frame() -> None:
    seen: list[dict[str, Any]] = []

    def fcn(columns: dict[str, Any]) -> dict[str, Any]:
        seen.append(columns)
        return {"n": [len(columns["visits"])] * len(columns["visits"])}

    engine = Engine([Model("c", FIELDS, "1", fcn, batch="columns")])
    assert engine.score({"source": "Google", "visits": "3"})["c"]["1"] == {"n": 1, "_status": "draft"}
    one = seen[-1]
    assert all(isinstance(array, np.ndarray) and len(array) == 1 for array in one.values())
    assert one["visits"].dtype == np.int64 and one["source"][0] == "Google"
    assert np.isnan(one["seconds"][0]) and one["city"].dtype == object and one["city"][0] != one["city"][0]
    rows = engine.score_columns({"visits": [1, None, 2], "seconds": [1.5, 2.0, None]}, 3)
    assert [row["c"]["1"]["n"] for row in rows] == [3, 3, 3]
    chunk = seen[-1]
    assert chunk["visits"].dtype == np.float64 and np.isnan(chunk["visits"][1]) and np.isnan(chunk["seconds"][2])


def test_a_columns_model_with_the_wrong_number_of_values_fails_its_rows_only() -> None:
    engine = Engine(
        [
            Model("short", FIELDS, "1", lambda columns: {"n": [1]}, batch="columns"),
            Model("ok", FIELDS, "1", lambda data, results: {"n": 1}),
        ]
    )
    rows = engine.score_columns({"visits": [1, 2]}, 2)
    assert all("must have 2 values" in row["short"]["1"]["_error"] for row in rows)
    assert all(row["ok"]["1"]["n"] == 1 for row in rows)
    with pytest.raises(ModelDefinitionError, match="batch must be"):
        Engine([Model("bad", FIELDS, "1", lambda columns: {}, batch="arrays")])  # type: ignore[arg-type]


def test_the_scorer_describes_its_compiled_steps() -> None:
    scorer = EstimatorScorer(LOGIT, FIELDS, key="logit@1")
    assert "LogisticRegression" in scorer.description and "OneHotEncoder" in scorer.description


@pytest.mark.slow
def test_mlsm_models_shows_which_estimator_models_are_compiled(cli: Any, tmp_path: Path) -> None:
    joblib.dump(LOGIT, tmp_path / "logit.joblib")
    models = tmp_path / "models.py"
    models.write_text(
        "import numpy as np\n"
        "from sklearn.neighbors import KNeighborsRegressor\n"
        "from mlsm import Field, Model\n"
        "FIELDS = {'visits': Field(float), 'seconds': Field(float)}\n"
        "near = KNeighborsRegressor(n_neighbors=1).fit(np.array([[0.0, 0.0], [1.0, 1.0]]), [0.0, 1.0])\n"
        "MODELS = [\n"
        f"    Model.from_estimator('logit', '1', {str(tmp_path / 'logit.joblib')!r}, {{'source': Field(str),\n"
        "                         'city': Field(str),\n"
        "                         'visits': Field(int), 'seconds': Field(float)}),\n"
        "    Model.from_estimator('near', '1', near, FIELDS),\n"
        "]\n"
    )
    result = cli("models", models)
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    header = lines[0].split()
    assert header[-2:] == ["COMPILED", "FIELDS"]
    column = lines[0].index("COMPILED")
    assert [line[column:].split()[0] for line in lines[1:3]] == ["yes", "no"]
    assert lines[3].startswith("near@1: scored by the estimator itself, not compiled: predict: "), lines[3]
