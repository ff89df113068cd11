"""The whole-process batch benchmark's model set (``bench_engine.py process``): three ``batch=True`` scikit-learn
models on 8 numeric features and a summary. The fitted estimators are read from ``$MLSM_BENCH_ESTIMATORS`` (a
joblib file ``bench_engine.py`` trains once and caches)."""

from __future__ import annotations

import os
from typing import Any

import joblib
import pandas as pd

from mlsm import Field, Model, SummaryModel

FEATURES = [f"f{i}" for i in range(8)]
KEYS = [("logit", "1.0"), ("hgb", "1.0"), ("forest", "1.0")]
FIELDS = {name: Field(float) for name in FEATURES}

_estimators = joblib.load(os.environ["MLSM_BENCH_ESTIMATORS"])


def _scorer(estimator: Any) -> Any:
    def score(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"score": estimator.predict_proba(frame[FEATURES])[:, 1]})

    return score


def blend(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """The mean of the three scores and the model that scored highest."""
    best, best_score, total = None, -1.0, 0.0
    for name, version in KEYS:
        score = results[name][version]["score"]
        total += score
        if score > best_score:
            best, best_score = name, score
    return {"score": round(total / len(KEYS), 4), "best": best}


MODELS = [Model(n, FIELDS, v, _scorer(_estimators[n]), status="active", batch=True) for n, v in KEYS]
MODELS.append(SummaryModel("blend", [{"name": n, "version": v} for n, v in KEYS], "1.0", blend))
