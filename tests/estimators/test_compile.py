"""A compiled estimator scores like the estimator: for every supported step and final estimator, pipelines fitted
here on seeded synthetic leads (read back from CSV, as pandas gives them: NaN in string and number columns) score
Hypothesis-generated groups of records (known, unseen and missing categories, numbers in realistic ranges, missing
numbers) within 1e-9 of the estimator's ``predict_proba`` / ``predict`` / ``decision_function`` on the same rows as a
frame; where the estimator refuses a group, the compiled form refuses it too. What is not compiled says why.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlsm.demo import _module
from mlsm.estimators._compile import Compiled, compile_estimator

from ..conftest import EXAMPLE

CATEGORICAL = ["Lead Origin", "Lead Source", "Last Activity", "What is your current occupation", "City"]
NUMERIC = ["TotalVisits", "Total Time Spent on Website", "Page Views Per Visit"]
FLAG = "Do Not Email"
COLUMNS = [*CATEGORICAL, *NUMERIC, FLAG]
UNSEEN = ["Carrier Pigeon", "google ", "select", "0"]


def lead_frame(n: int, seed: int) -> pd.DataFrame:
    """The example's synthetic leads written to CSV and read back: strings with NaN for empty cells, numbers as
    float64 with NaN (garbled ones made missing), the e-mail flag as 0/1."""
    leads = _module(EXAMPLE, "leads")
    frame = pd.read_csv(io.StringIO(leads.generate_leads(n, seed).to_csv(index=False)))
    out = pd.DataFrame({name: frame[name].astype(object) for name in CATEGORICAL})
    for name in NUMERIC:
        out[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    out[FLAG] = (frame[FLAG] == "Yes").astype(np.float64)
    return out


TRAIN = lead_frame(3000, seed=7)
LABELS = np.random.default_rng(7).random(len(TRAIN)) < 1 / (
    1 + np.exp(1.5 - 0.002 * TRAIN["Total Time Spent on Website"].fillna(0) - 1.2 * (TRAIN["City"] == "Mumbai"))
)
TARGET = TRAIN["Total Time Spent on Website"].fillna(100).to_numpy() / 100 + 2 * LABELS  # for regressors
KNOWN = {name: sorted(TRAIN[name].dropna().unique().tolist()) for name in CATEGORICAL}


def features(
    categorical: Any = None, numeric: Any = None, flag: Any = "passthrough", **options: Any
) -> ColumnTransformer:
    """A lead ColumnTransformer: one-hot categories, imputed and scaled numbers and the flag by default."""
    categorical = categorical if categorical is not None else OneHotEncoder(handle_unknown="ignore")
    numeric = numeric if numeric is not None else make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    blocks = [("categorical", categorical, CATEGORICAL), ("numeric", numeric, NUMERIC)]
    if flag is not None:
        blocks.append(("flag", flag, [FLAG]))
    return ColumnTransformer(blocks, **options)


def ordinal_features(**encoder: Any) -> ColumnTransformer:
    """Ordinal codes first, numbers with their NaN passed through (for models that take NaN)."""
    encoder = {"handle_unknown": "use_encoded_value", "unknown_value": -1, **encoder}
    return ColumnTransformer(
        [("codes", OrdinalEncoder(**encoder), CATEGORICAL), ("numbers", "passthrough", [*NUMERIC, FLAG])]
    )


def dense_features() -> ColumnTransformer:
    return features(OneHotEncoder(handle_unknown="ignore", sparse_output=False))


# name -> (a pipeline maker, the method scored); every pipeline is fitted once, on TRAIN
PIPELINES: dict[str, tuple[Callable[[], Any], str]] = {
    # the example's shape (train.py): infrequent categories share a column, sparse output
    "example logistic": (
        lambda: Pipeline(
            [
                ("features", features(OneHotEncoder(handle_unknown="ignore", min_frequency=20))),
                ("model", LogisticRegression(max_iter=500, C=0.5)),
            ]
        ),
        "predict_proba",
    ),
    "example gradient boosting": (
        lambda: make_pipeline(
            features(OneHotEncoder(handle_unknown="ignore", min_frequency=20)),
            GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=1),
        ),
        "predict_proba",
    ),
    # encoders
    "one-hot infrequent_if_exist, max_categories": (
        lambda: make_pipeline(
            features(OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=5)), LogisticRegression()
        ),
        "predict_proba",
    ),
    "one-hot drop first, unknown ignored": (
        lambda: make_pipeline(features(OneHotEncoder(drop="first", handle_unknown="ignore")), LogisticRegression()),
        "predict_proba",
    ),
    "one-hot drop if_binary, unknown an error": (
        lambda: make_pipeline(
            features(
                make_pipeline(SimpleImputer(strategy="constant", fill_value="none"), OneHotEncoder(drop="if_binary"))
            ),
            LogisticRegression(),
        ),
        "predict_proba",
    ),
    "ordinal, unknown and missing encoded": (
        lambda: make_pipeline(
            ColumnTransformer(
                [
                    (
                        "codes",
                        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2),
                        CATEGORICAL,
                    ),
                    ("numbers", SimpleImputer(strategy="mean"), NUMERIC),
                ],
                remainder="passthrough",
            ),
            DecisionTreeClassifier(max_depth=6, random_state=0),
        ),
        "predict_proba",
    ),
    "ordinal with infrequent categories": (
        lambda: make_pipeline(
            ordinal_features(min_frequency=30, unknown_value=-5),
            HistGradientBoostingClassifier(max_iter=20, random_state=0),
        ),
        "predict_proba",
    ),
    # imputers, scalers, functions, remainders
    "imputers: most_frequent categories, mean and constant numbers, indicator": (
        lambda: make_pipeline(
            ColumnTransformer(
                [
                    (
                        "categorical",
                        make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                        CATEGORICAL,
                    ),
                    ("mean", SimpleImputer(strategy="mean", add_indicator=True), ["TotalVisits"]),
                    ("constant", SimpleImputer(strategy="constant", fill_value=-1.0), NUMERIC[1:]),
                ],
                remainder="drop",
            ),
            LogisticRegression(max_iter=2000),
        ),
        "predict_proba",
    ),
    "scaler without mean, without std; log1p": (
        lambda: make_pipeline(
            ColumnTransformer(
                [
                    ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                    (
                        "log",
                        make_pipeline(
                            SimpleImputer(strategy="median"),
                            FunctionTransformer(np.log1p),
                            StandardScaler(with_mean=False),
                        ),
                        NUMERIC[:2],
                    ),
                    ("plain", make_pipeline(SimpleImputer(), StandardScaler(with_std=False)), NUMERIC[2:]),
                ],
                remainder="passthrough",
                sparse_threshold=0,
            ),
            Ridge(alpha=3.0),
        ),
        "predict",
    ),
    "no ColumnTransformer: numbers only": (
        lambda: Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()), ("model", LinearRegression())]
        ),
        "predict",
    ),
    # final estimators
    "logistic decision_function": (lambda: make_pipeline(features(), LogisticRegression()), "decision_function"),
    "linear regression": (lambda: make_pipeline(features(), LinearRegression()), "predict"),
    "decision tree on NaN": (
        lambda: make_pipeline(ordinal_features(), DecisionTreeClassifier(max_depth=7, random_state=0)),
        "predict_proba",
    ),
    "decision tree regressor": (
        lambda: make_pipeline(features(), DecisionTreeRegressor(max_depth=7, random_state=0)),
        "predict",
    ),
    "random forest": (
        lambda: make_pipeline(features(), RandomForestClassifier(n_estimators=15, min_samples_leaf=3, random_state=0)),
        "predict_proba",
    ),
    "random forest on NaN, deep": (
        lambda: make_pipeline(ordinal_features(), RandomForestClassifier(n_estimators=10, random_state=0)),
        "predict_proba",
    ),
    "random forest regressor": (
        lambda: make_pipeline(features(), RandomForestRegressor(n_estimators=10, max_depth=8, random_state=0)),
        "predict",
    ),
    "extra trees": (
        lambda: make_pipeline(
            dense_features(), ExtraTreesClassifier(n_estimators=15, min_samples_leaf=2, random_state=0)
        ),
        "predict_proba",
    ),
    "extra trees regressor": (
        lambda: make_pipeline(features(), ExtraTreesRegressor(n_estimators=10, max_depth=8, random_state=0)),
        "predict",
    ),
    "gradient boosting, exponential loss": (
        lambda: make_pipeline(
            features(), GradientBoostingClassifier(n_estimators=20, loss="exponential", subsample=0.8, random_state=0)
        ),
        "predict_proba",
    ),
    "gradient boosting decision_function": (
        lambda: make_pipeline(features(), GradientBoostingClassifier(n_estimators=20, random_state=0)),
        "decision_function",
    ),
    "gradient boosting regressor, huber": (
        lambda: make_pipeline(features(), GradientBoostingRegressor(n_estimators=25, loss="huber", random_state=0)),
        "predict",
    ),
    "gradient boosting, zero init": (
        lambda: make_pipeline(features(), GradientBoostingClassifier(n_estimators=10, init="zero", random_state=0)),
        "predict_proba",
    ),
    "histogram gradient boosting on NaN": (
        lambda: make_pipeline(
            dense_features().set_params(numeric="passthrough"),
            HistGradientBoostingClassifier(max_iter=30, random_state=0),
        ),
        "predict_proba",
    ),
    "histogram gradient boosting, native categories after an OrdinalEncoder": (
        lambda: make_pipeline(
            ordinal_features(unknown_value=np.nan, encoded_missing_value=np.nan),
            HistGradientBoostingClassifier(max_iter=30, categorical_features=list(range(5)), random_state=0),
        ),
        "predict_proba",
    ),
    "histogram gradient boosting, native categories from string columns": (
        lambda: HistGradientBoostingClassifier(max_iter=25, categorical_features=CATEGORICAL, random_state=0),
        "predict_proba",
    ),
    "histogram gradient boosting regressor, poisson": (
        lambda: make_pipeline(
            ordinal_features(), HistGradientBoostingRegressor(max_iter=25, loss="poisson", random_state=0)
        ),
        "predict",
    ),
    "histogram gradient boosting regressor, native categories": (
        lambda: HistGradientBoostingRegressor(max_iter=25, categorical_features=CATEGORICAL, random_state=0),
        "predict",
    ),
}

_fitted: dict[str, Any] = {}


def fitted(name: str) -> Any:
    if name not in _fitted:
        make, method = PIPELINES[name]
        estimator = make()
        target = LABELS if method != "predict" else TARGET
        if name == "histogram gradient boosting regressor, poisson":
            target = np.abs(target)
        columns = NUMERIC if name == "no ColumnTransformer: numbers only" else COLUMNS
        _fitted[name] = estimator.fit(TRAIN[columns], target)
    return _fitted[name]


_compiled: dict[str, Compiled] = {}


def compiled_for(name: str) -> Compiled:
    if name not in _compiled:
        compiled, reason = compile_estimator(fitted(name), COLUMNS, method=PIPELINES[name][1])
        assert compiled is not None, reason
        _compiled[name] = compiled
    return _compiled[name]


def frame_of(columns: dict[str, list[Any]]) -> pd.DataFrame:
    """The rows as pandas reads them from a file: strings with NaN, numbers as float64 with NaN."""
    return pd.DataFrame(
        {
            name: pd.Series(
                [np.nan if v is None else v for v in columns[name]],
                dtype=object if name in CATEGORICAL else np.float64,
            )
            for name in COLUMNS
        }
    )


def estimator_scores(estimator: Any, method: str, frame: pd.DataFrame) -> np.ndarray | None:
    """The estimator's scores, or None when it refuses the rows."""
    try:
        out = np.asarray(getattr(estimator, method)(frame[list(estimator.feature_names_in_)]), dtype=np.float64)
    except ValueError:
        return None
    return out[:, 1] if method == "predict_proba" else out.reshape(-1)


def assert_same_scores(name: str, columns: dict[str, list[Any]]) -> None:
    estimator, method = fitted(name), PIPELINES[name][1]
    compiled = compiled_for(name)
    want = estimator_scores(estimator, method, frame_of(columns))
    if want is None:
        with pytest.raises(ValueError):
            compiled(columns)
        return
    got = compiled(columns)
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=0, atol=1e-9, equal_nan=True), (name, np.max(np.abs(got - want)))


def category(name: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(KNOWN[name]), st.sampled_from(UNSEEN), st.none(), st.just(np.nan))


NUMBERS = {
    "TotalVisits": st.one_of(st.integers(0, 60).map(float), st.floats(0, 300)),
    "Total Time Spent on Website": st.one_of(st.integers(0, 2500).map(float), st.floats(0, 5000)),
    "Page Views Per Visit": st.one_of(st.sampled_from([0.0, 1.0, 1.5, 2.33, 4.0]), st.floats(0, 60)),
}


def record() -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {name: category(name) for name in CATEGORICAL}
    fields.update({name: st.one_of(NUMBERS[name], st.none(), st.just(np.nan)) for name in NUMERIC})
    fields[FLAG] = st.sampled_from([0.0, 1.0])
    return st.fixed_dictionaries(fields)


def groups(size: int = 12) -> st.SearchStrategy[dict[str, list[Any]]]:
    """A group of 1..size records as columns (lists, None or NaN for missing values)."""
    return st.lists(record(), min_size=1, max_size=size).map(
        lambda records: {name: [r[name] for r in records] for name in COLUMNS}
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PIPELINES))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns=groups())
def test_compiled_scores_equal_the_estimators(name: str, columns: dict[str, list[Any]]) -> None:
    assert_same_scores(name, columns)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PIPELINES))
def test_compiled_scores_equal_the_estimators_on_fresh_leads(name: str) -> None:
    """Leads from another seed, as numpy arrays (what a reader gives), every one scored alone and all together."""
    leads = lead_frame(300, seed=11)
    columns = {name: leads[name].to_numpy() for name in COLUMNS}
    estimator, method = fitted(name), PIPELINES[name][1]
    compiled = compiled_for(name)
    want = estimator_scores(estimator, method, leads)
    if want is None:  # a model without an imputer refuses the missing numbers of some leads
        keep = ~leads[NUMERIC].isna().any(axis=1).to_numpy()
        leads = leads[keep].reset_index(drop=True)
        columns = {name: values[keep] for name, values in columns.items()}
        want = estimator_scores(estimator, method, leads)
    assert want is not None
    assert np.allclose(compiled(columns), want, rtol=0, atol=1e-9)
    alone = np.array([compiled({n: v[i : i + 1] for n, v in columns.items()})[0] for i in range(0, len(want), 7)])
    assert np.allclose(alone, want[::7], rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "name", ["decision tree regressor", "random forest", "gradient boosting decision_function", "extra trees"]
)
def test_trees_compare_float32_values_like_scikit_learn(name: str) -> None:
    """Numbers just above a threshold that round to float32 at or below it go left, as in scikit-learn (which
    converts X to float32): a tree walked on the float64 values would send them right."""
    estimator = fitted(name)
    model = estimator.steps[-1][1]
    scaler = estimator.steps[0][1].named_transformers_["numeric"].named_steps["standardscaler"]
    trees = [t.tree_ for t in np.asarray(getattr(model, "estimators_", [model])).reshape(-1)]
    offset = len(estimator.steps[0][1].named_transformers_["categorical"].get_feature_names_out())
    rows: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for tree in trees:
        for node in range(tree.node_count):
            feature = tree.feature[node] - offset
            if tree.children_left[node] < 0 or not 0 <= feature < len(NUMERIC):
                continue
            scaled = np.nextafter(tree.threshold[node], np.inf)
            raw = scaled * scaler.scale_[feature] + scaler.mean_[feature]
            if raw < 0:
                continue
            for column in COLUMNS:
                rows[column].append(TRAIN[column].iloc[node % 50])
            rows[NUMERIC[feature]][-1] = raw
    assert rows[FLAG], "no numeric split found"
    assert_same_scores(name, rows)


@pytest.mark.slow
def test_the_examples_pipelines_compile_and_score_exactly(example_artifacts: Any) -> None:
    features_module = _module(EXAMPLE, "features")
    leads = _module(EXAMPLE, "leads")
    import joblib

    raw = leads.generate_leads(400, seed=5)
    prepared = features_module.prepare(features_module.typed_frame(raw))
    for path in sorted(example_artifacts.glob("*.joblib")):
        pipeline = joblib.load(path)["pipeline"]
        names = list(pipeline.feature_names_in_)
        compiled, reason = compile_estimator(pipeline, names)
        assert compiled is not None, (path.name, reason)
        columns = {name: prepared[name].to_numpy() for name in names}
        want = pipeline.predict_proba(prepared[names])[:, 1]
        assert np.allclose(compiled(columns), want, rtol=0, atol=1e-9), path.name
        one = compiled({name: values[:1] for name, values in columns.items()})
        assert np.allclose(one, want[:1], rtol=0, atol=1e-9)


@pytest.mark.slow
def test_refusals_match_the_estimator() -> None:
    """Infinity, a float32 overflow before a tree, NaN reaching a model that refuses it and an unknown category
    with handle_unknown='error' are refused by both."""
    base = {name: [TRAIN[name].iloc[0]] for name in COLUMNS}
    base["TotalVisits"] = [3.0]
    cases = [
        ("linear regression", "TotalVisits", np.inf),
        ("decision tree on NaN", "Total Time Spent on Website", 1e39),
        ("decision tree on NaN", "Total Time Spent on Website", -np.inf),
        ("example logistic", FLAG, np.nan),
        ("one-hot drop if_binary, unknown an error", "City", "Atlantis"),
    ]
    for name, column, value in cases:
        columns = {**base, column: [value]}
        assert estimator_scores(fitted(name), PIPELINES[name][1], frame_of(columns)) is None, (name, column)
        with pytest.raises(ValueError):
            compiled_for(name)(columns)


def test_columns_are_read_by_name_whatever_their_order() -> None:
    compiled = compiled_for("random forest")
    leads = lead_frame(20, seed=3)
    shuffled = {name: leads[name].to_numpy() for name in reversed(COLUMNS)}
    want = fitted("random forest").predict_proba(leads)[:, 1]
    assert np.allclose(compiled(shuffled), want, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("estimator", "columns", "reason"),
    [
        (make_pipeline(features(), KNeighborsClassifier()), COLUMNS, "KNeighborsClassifier"),
        (
            make_pipeline(features(numeric=make_pipeline(SimpleImputer(), MinMaxScaler())), LogisticRegression()),
            COLUMNS,
            "MinMaxScaler",
        ),
        (
            make_pipeline(features(flag=FunctionTransformer(lambda frame: frame * 2)), LogisticRegression()),
            COLUMNS,
            "FunctionTransformer(func=<lambda>)",
        ),
        (make_pipeline(features(), LogisticRegression()), COLUMNS[:-1], "not among the columns given"),
    ],
)
def test_what_is_not_compiled_says_why(estimator: Any, columns: list[str], reason: str) -> None:
    estimator.fit(TRAIN[COLUMNS], LABELS)
    compiled, why = compile_estimator(estimator, columns)
    assert compiled is None
    assert why is not None and reason in why


def test_multiclass_classifiers_are_not_compiled() -> None:
    classes = np.asarray(TRAIN["Lead Origin"].fillna("none"))
    estimator = make_pipeline(features(), LogisticRegression(max_iter=200)).fit(TRAIN[COLUMNS], classes)
    compiled, why = compile_estimator(estimator, COLUMNS)
    assert compiled is None and why is not None and "classes (only binary ones)" in why


def test_methods_a_model_does_not_compile_are_refused() -> None:
    estimator = fitted("linear regression")
    compiled, why = compile_estimator(estimator, COLUMNS, method="predict_proba")
    assert compiled is None and why is not None and "'predict_proba'" in why
