"""One-row (and small-group) latency of a fitted scikit-learn pipeline vs its compiled form (``mlsm.estimators``).

    python benchmarks/bench_compile.py [--repeats 300] [--sizes 1,16] [--only gbm60,hgb]

Each estimator sits in the lead example's pipeline (one-hot categories with infrequent ones merged, imputed and
scaled numbers, a passthrough flag), trained on the example's synthetic leads. The estimator scores a frame of the
rows (``predict_proba(frame)[:, 1]`` or ``predict(frame)``); the compiled form scores the same rows as column
arrays. Both are timed in turn (medians of ``--repeats`` runs each) and the ratio is printed, with the largest
difference between their scores over 2,000 leads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "lead_scoring"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

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
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402
from timing import alternate  # noqa: E402

from mlsm.estimators._compile import compile_estimator  # noqa: E402

COLUMNS = [*CATEGORICAL, *NUMERIC, "Do Not Email"]

ESTIMATORS: dict[str, tuple[Any, bool]] = {
    "logistic": (lambda: LogisticRegression(max_iter=500, C=0.5), True),
    "linear": (lambda: LinearRegression(), False),
    "ridge": (lambda: Ridge(alpha=1.0), False),
    "tree": (lambda: DecisionTreeClassifier(max_depth=8, random_state=0), True),
    "tree_reg": (lambda: DecisionTreeRegressor(max_depth=8, random_state=0), False),
    "forest30": (lambda: RandomForestClassifier(n_estimators=30, max_depth=10, random_state=0), True),
    "forest100": (lambda: RandomForestClassifier(n_estimators=100, min_samples_leaf=3, random_state=0), True),
    "forest_reg": (lambda: RandomForestRegressor(n_estimators=30, max_depth=10, random_state=0), False),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=300, help="timed runs of each contender per size")
    parser.add_argument("--sizes", default="1,16", help="group sizes, comma-separated")
    parser.add_argument("--only", default="", help="estimators to run, comma-separated (default: all)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    warnings.filterwarnings("ignore")
    raw = generate_leads(12_000, 42)
    frame = prepare(typed_frame(raw))[COLUMNS]
    labels = raw["Converted"].astype(int).to_numpy()
    train, test = frame.iloc[:10_000], frame.iloc[10_000:].reset_index(drop=True)
    test.loc[::7, "Lead Source"] = "Never Seen"
    print(f"median of {args.repeats} runs each, timed in turn; ratio = estimator / compiled")
    print(
        f"{'estimator':10s} {'rows':>4s} {'estimator ms':>12s} {'compiled ms':>11s} {'ratio':>7s} {'max |diff|':>10s}"
    )
    for name, (make, classifier) in ESTIMATORS.items():
        if args.only and name not in args.only.split(","):
            continue
        target = labels[:10_000] if classifier else train["Total Time Spent on Website"].to_numpy() / 100
        fitted = pipeline(make()).fit(train, target)
        method = "predict_proba" if classifier else "predict"
        compiled, reason = compile_estimator(fitted, COLUMNS)
        if compiled is None:
            print(f"{name:10s} not compiled: {reason}")
            continue

        def estimator_scores(rows: Any, fitted: Any = fitted, method: str = method) -> np.ndarray:
            out = getattr(fitted, method)(rows)
            return out[:, 1] if out.ndim == 2 else out

        columns = {c: test[c].to_numpy() for c in COLUMNS}
        diff = float(np.max(np.abs(compiled(columns) - estimator_scores(test))))
        for n in sizes:
            rows = test.iloc[:n]
            group = {c: values[:n] for c, values in columns.items()}
            times_estimator, times_compiled = alternate(
                lambda rows=rows: estimator_scores(rows),
                lambda group=group, compiled=compiled: compiled(group),
                args.repeats,
                warm_up=True,
            )
            a, b = statistics.median(times_estimator), statistics.median(times_compiled)
            print(f"{name:10s} {n:4d} {a * 1e3:12.3f} {b * 1e3:11.3f} {a / b:7.1f} {diff:10.2g}")


if __name__ == "__main__":
    main()
