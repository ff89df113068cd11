"""Train the example's logistic regression and gradient-boosting models on synthetic leads.

Writes ``artifacts/<name>-<version>.joblib`` beside this file, stamped with the scikit-learn version that made
them (a pickle is only safe to load with the version that wrote it); ``models.py`` loads them at import.

    python examples/lead_scoring/train.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import joblib
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))

from features import CATEGORICAL, NUMERIC, prepare, typed_frame
from leads import generate_leads

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

# (name, version) -> estimator; gbm 2.0 is the draft challenger: more, shallower-learning trees
ESTIMATORS = {
    ("logit", "1.0"): lambda: LogisticRegression(max_iter=500, C=0.5),
    ("gbm", "1.0"): lambda: GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=1),
    ("gbm", "2.0"): lambda: GradientBoostingClassifier(
        n_estimators=120, max_depth=3, learning_rate=0.06, random_state=2
    ),
}


def _pipeline(estimator: object) -> Pipeline:
    categorical = Pipeline([("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=20))])
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    columns = ColumnTransformer(
        [
            ("categorical", categorical, CATEGORICAL),
            ("numeric", numeric, NUMERIC),
            ("flags", "passthrough", ["Do Not Email"]),
        ]
    )
    return Pipeline([("features", columns), ("model", estimator)])


def artifact_path(name: str, version: str) -> Path:
    return ARTIFACTS / f"{name}-{version}.joblib"


def train(records: int = 20_000, seed: int = 42) -> dict[str, dict[str, object]]:
    """Train every estimator; returns each one's holdout AUC and training time."""
    raw = generate_leads(records, seed)
    X = prepare(typed_frame(raw))
    labels = raw["Converted"].astype(int).to_numpy()
    cut = int(len(X) * 0.8)
    ARTIFACTS.mkdir(exist_ok=True)
    report = {}
    for (name, version), make in ESTIMATORS.items():
        started = time.perf_counter()
        pipeline = _pipeline(make()).fit(X.iloc[:cut], labels[:cut])
        auc = roc_auc_score(labels[cut:], pipeline.predict_proba(X.iloc[cut:])[:, 1])
        meta = {"sklearn": sklearn.__version__, "records": records, "seed": seed, "holdout_auc": round(float(auc), 4)}
        joblib.dump({"pipeline": pipeline, **meta}, artifact_path(name, version))
        report[f"{name}@{version}"] = {**meta, "seconds": round(time.perf_counter() - started, 2)}
    (ARTIFACTS / "report.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    print(json.dumps(train(), indent=2))
