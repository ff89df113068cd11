"""Which way to score 1..64 rows of a fitted scikit-learn pipeline fast and exactly: the estimator itself, ONNX
Runtime (through skl2onnx, float and double), treelite's GTIL, or mlsm's own compile (``mlsm.estimators``).

Needs packages mlsm does not depend on; run it from a virtual environment of its own:

    python3 -m venv /tmp/rt && /tmp/rt/bin/pip install scikit-learn==<mlsm's> numpy pandas pyarrow tqdm hypothesis \\
        skl2onnx onnxruntime treelite
    PYTHONPATH=src /tmp/rt/bin/python benchmarks/compare_runtimes.py [--repeats 200] [--only gbm60,hgb]

Per estimator (the lead example's pipeline around it, trained on the example's synthetic leads) it prints the
median time of each way relative to the estimator's on a one-row frame, for 1, 4, 16 and 64 rows (timed in turn,
so that a busy machine slows all alike), and the largest difference from the estimator's scores over 2,000 rows
plus rows placed just above tree thresholds (where rounding to float32 decides the branch).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "lead_scoring"))
sys.path.insert(0, str(ROOT / "src"))

from features import CATEGORICAL, NUMERIC, prepare, typed_frame  # noqa: E402
from leads import generate_leads  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

from mlsm.estimators._compile import compile_estimator  # noqa: E402

COLUMNS = [*CATEGORICAL, *NUMERIC, "Do Not Email"]
SIZES = (1, 4, 16, 64)

ESTIMATORS: dict[str, tuple[Any, bool]] = {
    "logistic": (lambda: LogisticRegression(max_iter=500, C=0.5), True),
    "linear": (lambda: LinearRegression(), False),
    "ridge": (lambda: Ridge(alpha=1.0), False),
    "tree": (lambda: DecisionTreeClassifier(max_depth=8, random_state=0), True),
    "tree_reg": (lambda: DecisionTreeRegressor(max_depth=8, random_state=0), False),
    "forest30": (lambda: RandomForestClassifier(n_estimators=30, max_depth=10, random_state=0), True),
    "forest100": (lambda: RandomForestClassifier(n_estimators=100, min_samples_leaf=3, random_state=0), True),
    "extra100": (lambda: ExtraTreesClassifier(n_estimators=100, min_samples_leaf=3, random_state=0), True),
    "gbm60": (lambda: GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=1), True),
    "gbm120": (
        lambda: GradientBoostingClassifier(n_estimators=120, max_depth=3, learning_rate=0.06, random_state=2),
        True,
    ),
    "gbm_reg": (lambda: GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=1), False),
    "hgb": (lambda: HistGradientBoostingClassifier(max_iter=100, random_state=0), True),
    "hgb_reg": (lambda: HistGradientBoostingRegressor(max_iter=100, random_state=0), False),
}


def pipeline(estimator: Any) -> Pipeline:
    """The example's pipeline (train.py) around ``estimator``; dense one-hot output for HistGradientBoosting."""
    dense = isinstance(estimator, (HistGradientBoostingClassifier, HistGradientBoostingRegressor))
    categorical = OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=not dense)
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    features = ColumnTransformer(
        [
            ("categorical", categorical, CATEGORICAL),
            ("numeric", numeric, NUMERIC),
            ("flags", "passthrough", ["Do Not Email"]),
        ]
    )
    return Pipeline([("features", features), ("model", estimator)])


def median_ratio(a: Any, b: Any, repeats: int) -> float:
    """Median time of ``b`` over the median time of ``a``, called in turn."""
    a()
    b()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, times in ((a, ta), (b, tb)):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
    return statistics.median(tb) / statistics.median(ta)


def median_time(fn: Any, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def near_thresholds(model: Any, matrix: np.ndarray, count: int = 400) -> np.ndarray:
    """Rows of ``matrix`` with one feature set just above a tree threshold: a double just above the threshold that
    rounds to a float32 at or below it goes left in scikit-learn (it compares float32 values) and right in a runtime
    comparing doubles."""
    trees = []
    if hasattr(model, "estimators_"):
        trees = [t.tree_ for t in np.asarray(model.estimators_).reshape(-1)]
    elif hasattr(model, "tree_"):
        trees = [model.tree_]
    rng = np.random.default_rng(0)
    rows = []
    pairs = [(t.feature[i], t.threshold[i]) for t in trees for i in range(t.node_count) if t.children_left[i] >= 0]
    for k in rng.choice(len(pairs), size=min(count, len(pairs)), replace=False) if pairs else []:
        feature, threshold = pairs[k]
        row = matrix[rng.integers(len(matrix))].copy()
        row[feature] = np.nextafter(threshold, np.inf)
        rows.append(row)
    return np.array(rows) if rows else np.zeros((0, matrix.shape[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    raw = generate_leads(20_000, 42)
    frame = prepare(typed_frame(raw))[COLUMNS]
    labels = raw["Converted"].astype(int).to_numpy()
    train, test = frame.iloc[:16_000], frame.iloc[16_000:18_000].reset_index(drop=True)
    test.loc[::7, "Lead Source"] = "Never Seen"  # unseen categories, missing numbers
    test.loc[::5, "TotalVisits"] = np.nan
    print(f"ratios: median time / median time of the estimator on a one-row frame; repeats {args.repeats}")
    for name, (make, classifier) in ESTIMATORS.items():
        if not args.only or name in args.only.split(","):
            compare(name, make(), classifier, train, test, labels[:16_000], args.repeats)


def compare(name: str, estimator: Any, classifier: bool, train: Any, test: Any, labels: Any, repeats: int) -> None:
    """Print one estimator's ratios and differences."""
    import onnxruntime as ort
    import treelite
    import treelite.gtil
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    header = "  ".join(f"n={n:<3d}" for n in SIZES)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    target = labels[:16_000] if classifier else train["Total Time Spent on Website"].to_numpy() / 100 + labels[:16_000]
    fitted = pipeline(estimator).fit(train, target)
    features, model = fitted.steps[0][1], fitted.steps[1][1]
    method = "predict_proba" if classifier else "predict"

    def sk(x: Any, fitted: Any = fitted, method: str = method) -> np.ndarray:
        out = getattr(fitted, method)(x)
        return out[:, 1] if out.ndim == 2 else out

    reference = sk(test)
    matrix = features.transform(test)
    matrix = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
    adversarial = near_thresholds(model, matrix)
    adversarial_ref = (
        (model.predict_proba(adversarial)[:, 1] if classifier else model.predict(adversarial))
        if len(adversarial)
        else None
    )
    compiled, reason = compile_estimator(fitted, COLUMNS)
    ways: dict[str, tuple[Any, float | str]] = {"estimator on frame": (lambda n: lambda: sk(test.iloc[:n]), 0.0)}
    base = median_time(lambda: sk(test.iloc[:1]), repeats)
    print(f"\n{name}: {type(model).__name__}; estimator on 1 row: {base * 1e3:.2f} ms   {header}")

    # (a') the final estimator alone on the feature matrix: what validation costs without the frame
    def sk_matrix(x: np.ndarray, model: Any = model, classifier: bool = classifier) -> np.ndarray:
        return model.predict_proba(x)[:, 1] if classifier else model.predict(x)

    ways["estimator on matrix (no frame, no features)"] = (lambda n: lambda: sk_matrix(matrix[:n]), 0.0)
    # (b) ONNX Runtime, the whole pipeline in float (skl2onnx's default); and the final model alone in double
    try:
        types = [(c, StringTensorType([None, 1])) for c in CATEGORICAL] + [
            (c, FloatTensorType([None, 1])) for c in [*NUMERIC, "Do Not Email"]
        ]
        onx = to_onnx(fitted, initial_types=types, options={"zipmap": False} if classifier else None)
        session = ort.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])

        inputs = [i.name for i in session.get_inputs()]  # skl2onnx renames columns with spaces

        def feeds(rows: Any, inputs: list[str] = inputs) -> dict[str, np.ndarray]:
            out = {}
            for key, c in zip(inputs, [t[0] for t in types]):
                values = rows[c].to_numpy()
                kind = str if c in CATEGORICAL else np.float32
                out[key] = values.astype(kind).reshape(-1, 1)
            return out

        def run_float(feed: dict[str, np.ndarray], session: Any = session) -> np.ndarray:
            out = session.run(None, feed)
            return out[-1][:, 1] if classifier else out[0].ravel()

        diff = float(np.max(np.abs(run_float(feeds(test)) - reference)))
        prepared = {n: feeds(test.iloc[:n]) for n in SIZES}
        ways["ONNX Runtime, pipeline, float"] = (lambda n: lambda: run_float(prepared[n]), diff)
    except Exception as exc:
        ways["ONNX Runtime, pipeline, float"] = (None, f"{type(exc).__name__}: {str(exc)[:160]}")
    try:
        onx = to_onnx(
            model,
            initial_types=[("X", DoubleTensorType([None, matrix.shape[1]]))],
            target_opset={"": 18, "ai.onnx.ml": 3},
            options={"zipmap": False} if classifier else None,
        )
        session = ort.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])

        def run_double(x: np.ndarray, session: Any = session) -> np.ndarray:
            out = session.run(None, {"X": x})
            return out[-1][:, 1] if classifier else out[0].ravel()

        diff = float(np.max(np.abs(run_double(matrix) - reference)))
        if adversarial_ref is not None:
            wrong = np.abs(run_double(adversarial) - adversarial_ref) > 1e-9
            diff = f"{diff:.2g}; {wrong.sum()}/{len(wrong)} rows near thresholds off"  # type: ignore[assignment]
        ways["ONNX Runtime, model only, double"] = (lambda n: lambda: run_double(matrix[:n]), diff)
        if adversarial_ref is not None:
            rounded = adversarial.astype(np.float32).astype(np.float64)
            wrong = np.abs(run_double(rounded) - adversarial_ref) > 1e-9
            ways["  the same, input rounded to float32 first"] = (None, f"{wrong.sum()}/{len(wrong)} rows off")
    except Exception as exc:
        ways["ONNX Runtime, model only, double"] = (None, f"{type(exc).__name__}: {str(exc)[:160]}")
    # (c) treelite's GTIL (tree models only; the feature matrix given to it)
    try:
        tl = treelite.sklearn.import_model(model)
        col = 1 if classifier else 0

        def run_tl(x: np.ndarray, tl: Any = tl, col: int = col) -> np.ndarray:
            out = treelite.gtil.predict(tl, x, nthread=1)
            out = out.reshape(x.shape[0], -1)
            return out[:, col] if out.shape[1] > 1 else out[:, 0]

        diff = float(np.max(np.abs(run_tl(matrix) - reference)))
        if adversarial_ref is not None:
            wrong = np.abs(run_tl(adversarial) - adversarial_ref) > 1e-9
            diff = f"{diff:.2g}; {wrong.sum()}/{len(wrong)} rows near thresholds off"  # type: ignore[assignment]
        ways["treelite GTIL, model only"] = (lambda n: lambda: run_tl(matrix[:n]), diff)
        if adversarial_ref is not None:
            rounded = adversarial.astype(np.float32).astype(np.float64)
            wrong = np.abs(run_tl(rounded) - adversarial_ref) > 1e-9
            worst = float(np.max(np.abs(run_tl(rounded) - adversarial_ref)))
            ways["  the same, input rounded to float32 first"] = (
                None,
                f"{wrong.sum()}/{len(wrong)} rows off, max|diff| {worst:.2g}",
            )
    except Exception as exc:
        ways["treelite GTIL, model only"] = (None, f"{type(exc).__name__}: {str(exc)[:160]}")
    # (d) mlsm's compile of the whole pipeline
    if compiled is not None:
        columns = {c: test[c].to_numpy() for c in COLUMNS}
        diff = float(np.max(np.abs(compiled(columns) - reference)))
        groups = {n: {c: v[:n] for c, v in columns.items()} for n in SIZES}
        ways["mlsm compile, pipeline"] = (lambda n: lambda: compiled(groups[n]), diff)
    else:
        ways["mlsm compile, pipeline"] = (None, f"not compiled: {reason}")
    for label, (factory, diff) in ways.items():
        if factory is None:
            print(f"  {label:46s} {diff}")
            continue
        ratios = [median_ratio(lambda: sk(test.iloc[:1]), factory(n), repeats) for n in SIZES]
        shown = diff if isinstance(diff, str) else f"{diff:.2g}"
        print(f"  {label:46s} " + "  ".join(f"{r:5.3f}" for r in ratios) + f"   max|diff| {shown}")


if __name__ == "__main__":
    main()
