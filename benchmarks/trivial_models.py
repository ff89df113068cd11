"""Models that cost next to nothing, with the example's input fields: ``bench_service.py --models`` this file to see
the service's own cost per request (HTTP, JSON, checks, grouping, storage), without the example's scikit-learn.

A per-record model, a ``batch=True`` model (so records are grouped as with the example) and a summary.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "lead_scoring"))
from features import FIELDS

from mlsm import Model, SummaryModel


def rules(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {"score": 0.5, "reasons": []}


def constant(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"score": [0.25] * len(frame)})


def pick(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {"score": results["rules"]["1.0"].get("score"), "model": "rules@1.0"}


MODELS = [
    Model("rules", FIELDS, "1.0", rules, status="active"),
    Model("constant", FIELDS, "1.0", constant, status="active", batch=True),
    SummaryModel("lead_score", [{"name": "rules", "version": "1.0"}], "1.0", pick, status="active"),
]
