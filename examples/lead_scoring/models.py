"""The lead-scoring model set: legacy rules, a logistic regression, gradient boosting, a draft challenger, and a
summary that decides which score wins.

    mlsm models examples/lead_scoring/models.py
    mlsm run examples/lead_scoring/models.py leads.csv --id-field "Prospect ID"

The scikit-learn pipelines are made by ``train.py`` (``mlsm demo`` runs it when they are missing or were made by
another scikit-learn version) and loaded here by ``Model.from_estimator``, which records each artifact's sha256
and scikit-learn version in a run's provenance and scores a single lead or a small group through the pipeline's
compiled form (the same scores, without pandas). ``prepare_arrays`` turns the fields into the pipelines' input, as
``prepare`` did in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from features import FIELDS, prepare_arrays

from mlsm import Field, Model, SummaryModel

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _pipeline(name: str, version: str, status: str) -> Model:
    path = ARTIFACTS / f"{name}-{version}.joblib"
    if not path.exists():
        raise RuntimeError(f"model artifact {path.name} not found: run python {Path(__file__).with_name('train.py')}")
    return Model.from_estimator(name, version, path, FIELDS, status=status, prepare=prepare_arrays)


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

logit = _pipeline("logit", "1.0", "active")
gbm = _pipeline("gbm", "1.0", "active")
gbm_challenger = _pipeline("gbm", "2.0", "draft")

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
