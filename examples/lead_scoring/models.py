"""The lead-scoring model set: legacy rules, a logistic regression, gradient boosting, a draft challenger, and a
summary that decides which score wins.

    mlsm models examples/lead_scoring/models.py
    mlsm run examples/lead_scoring/models.py leads.csv --id-field "Prospect ID"

The scikit-learn artifacts are made by ``train.py`` (``mlsm demo`` runs it when they are missing or were made
by another scikit-learn version) and loaded here, at import. Small frames (a real-time group) are scored by the
same pipelines compiled into lookups (``inference.py``), with exactly their scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import sklearn
from features import FIELDS, SMALL_FRAME, prepare
from inference import compile_pipeline

from mlsm import Field, Model, SummaryModel

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _load(name: str, version: str) -> Any:
    path = ARTIFACTS / f"{name}-{version}.joblib"
    if not path.exists():
        raise RuntimeError(f"model artifact {path.name} not found: run python {Path(__file__).with_name('train.py')}")
    saved = joblib.load(path)
    if saved["sklearn"] != sklearn.__version__:
        raise RuntimeError(
            f"{path.name} was trained with scikit-learn {saved['sklearn']}, this is {sklearn.__version__}: retrain it"
        )
    return saved["pipeline"]


def _scorer(pipeline: Any) -> Any:
    # small groups (real time) skip the pipeline's frame handling: same scores, see inference.py
    compiled = compile_pipeline(pipeline)

    def score(frame: pd.DataFrame) -> pd.DataFrame:
        features = prepare(frame)
        model = compiled if compiled is not None and len(features) <= SMALL_FRAME else pipeline
        return pd.DataFrame({"score": model.predict_proba(features)[:, 1]})

    return score


# -- the legacy if-then rules, as sales wrote them years ago ------------------------------------------------------


def rules(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    score = 0.15
    reasons = []
    if data["What is your current occupation"] == "Working Professional":
        score += 0.35
        reasons.append("professional")
    if data["Lead Origin"] == "Lead Add Form" or data["Lead Source"] == "Reference":
        score += 0.3
        reasons.append("referred or form")
    seconds = data["Total Time Spent on Website"]
    if seconds > 1000:
        score += 0.2
        reasons.append("long visit")
    elif seconds > 300:
        score += 0.1
    if data["Last Activity"] in ("SMS Sent", "Had a Phone Conversation"):
        score += 0.15
        reasons.append("recent contact")
    if data["Last Activity"] in ("Email Bounced", "Unsubscribed") or data["Do Not Email"]:
        score -= 0.1
    return {"score": round(min(max(score, 0.0), 1.0), 3), "reasons": reasons}


rules_model = Model(
    "rules",
    {
        "Lead Origin": Field(str, required=False),
        "Lead Source": Field(str, required=False),
        "Do Not Email": Field(bool, required=False),
        "Total Time Spent on Website": Field(int, ge=0),
        "Last Activity": Field(str, required=False),
        "What is your current occupation": Field(str, required=False),
    },
    "1.0",
    rules,
    status="active",
)

logit = Model("logit", FIELDS, "1.0", _scorer(_load("logit", "1.0")), status="active", batch=True)
gbm = Model("gbm", FIELDS, "1.0", _scorer(_load("gbm", "1.0")), status="active", batch=True)
gbm_challenger = Model("gbm", FIELDS, "2.0", _scorer(_load("gbm", "2.0")), status="draft", batch=True)

# -- the summary: which score wins -------------------------------------------------------------------------------

PREFERENCE = [("gbm", "1.0"), ("logit", "1.0"), ("rules", "1.0")]


def pick_winner(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """The first active model in order of preference that produced a score wins; its score sets the priority."""
    for name, version in PREFERENCE:
        slot = results.get(name, {}).get(version, {})
        if "score" in slot:
            score = float(slot["score"])
            priority = "A" if score >= 0.7 else "B" if score >= 0.4 else "C" if score >= 0.2 else "D"
            return {"score": round(score, 4), "model": f"{name}@{version}", "priority": priority}
    return {"score": None, "model": None, "priority": "unscored"}


lead_score = SummaryModel(
    "lead_score", [{"name": n, "version": v} for n, v in PREFERENCE], "1.0", pick_winner, status="active"
)

MODELS = [rules_model, logit, gbm, gbm_challenger, lead_score]
