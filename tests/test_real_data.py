"""The public lead data set (9,240 real, messy leads) scored by a model set written for it, and judged on its own
outcomes (its `Converted` column)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from .conftest import EXAMPLE, CliResult

pytestmark = pytest.mark.realdata

MODELS = """
    from mlsm import Field, Model, SummaryModel
    import pandas as pd

    QUALITY = ["High in Relevance", "Might be", "Not Sure", "Low in Relevance", "Worst"]

    def engagement(data, results):
        per_visit = data["Total Time Spent on Website"] / max(data["TotalVisits"], 1)
        return {"score": min(1.0, per_visit / 600), "per_visit": round(per_visit, 1)}

    WEIGHTS = {"High in Relevance": 0.9, "Might be": 0.6, "Not Sure": 0.4, "Low in Relevance": 0.2, "Worst": 0.05}

    def quality(data, results):
        return {"score": WEIGHTS[data["Lead Quality"]]}

    def profile(frame):
        index = frame["Asymmetrique Activity Score"].astype("float64")
        return pd.DataFrame({"score": ((index - 7) / 13).clip(0, 1).fillna(0.5)})

    def verdict(data, results):
        scores = [slot["score"] for versions in results.values() for slot in versions.values() if "score" in slot]
        return {"score": sum(scores) / len(scores) if scores else None, "models": len(scores)}

    ENGAGEMENT = {"TotalVisits": int, "Total Time Spent on Website": Field(int, ge=0), "Do Not Email": bool}
    PROFILE = {"Asymmetrique Activity Score": Field(float, ge=0, required=False)}
    NEEDS = [{"name": n, "version": "1"} for n in ("engagement", "quality", "profile")]

    engagement_model = Model("engagement", ENGAGEMENT, "1", engagement, status="active")
    quality_model = Model("quality", {"Lead Quality": Field(str, choices=QUALITY)}, "1", quality)
    profile_model = Model("profile", PROFILE, "1", profile, batch=True)
    summary = SummaryModel("verdict", NEEDS, "1", verdict)
"""


@pytest.mark.slow
def test_real_leads_scored_with_validation_errors_exactly_where_the_data_is_bad(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], real_data: Path
) -> None:
    models = write_models(MODELS)
    result = cli("run", models, real_data, "--id-field", "Prospect ID", "--chunk-size", "1000")
    assert result.code == 0, result.err
    raw = pd.read_csv(real_data, dtype=str, keep_default_na=False)
    no_visits = int((raw["TotalVisits"] == "").sum())
    no_quality = int((raw["Lead Quality"] == "").sum())
    assert f"records read {len(raw):,} · scored {len(raw):,} · rejected 0" in result.out
    rows = {
        line.split()[0]: [int(x.replace(",", "")) for x in line.split()[2:]]
        for line in result.out.splitlines()
        if "@1 " in line
    }
    assert rows["engagement@1"] == [len(raw) - no_visits, no_visits]
    assert rows["quality@1"] == [len(raw) - no_quality, no_quality]
    assert rows["profile@1"] == [len(raw), 0]
    assert rows["verdict@1"] == [len(raw), 0]
    row = raw.loc[raw["TotalVisits"] == ""].iloc[0]
    document = json.loads(cli("results", row["Prospect ID"]).out)
    assert document["results"]["engagement"]["1"]["_errors"] == [
        {"field": "TotalVisits", "problem": "missing (required)"}
    ]
    assert document["results"]["verdict"]["1"]["models"] == 1 + (row["Lead Quality"] != "")


@pytest.mark.slow
def test_the_example_models_score_the_real_leads(
    cli: Callable[..., CliResult], real_data: Path, example_artifacts: Path
) -> None:
    # --allow-unreleased: the example's active models are in mlsm's own repository, on this checkout's branch
    result = cli("run", EXAMPLE / "models.py", real_data, "--id-field", "Prospect ID", "--allow-unreleased")
    assert result.code == 0, result.err
    assert "records read 9,240 · scored 9,240 · rejected 0" in result.out
    for line in result.out.splitlines():
        if "@" in line and ("active" in line or "draft" in line):
            assert line.split()[-1] == "0", line  # every model scored every real lead


@pytest.mark.slow
def test_evaluate_on_the_real_outcomes_matches_scikit_learn(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], real_data: Path, tmp_path: Path
) -> None:
    from sklearn.metrics import roc_auc_score

    from mlsm import open_store

    url = f"sqlite:///{tmp_path / 'real.db'}"
    models = write_models(MODELS)
    assert cli("run", models, real_data, "--id-field", "Prospect ID", "--store", url).code == 0
    loaded = cli("outcomes", "load", real_data, "--store", url, "--id-field", "Prospect ID", "--outcome", "Converted")
    assert loaded.code == 0, loaded.err
    raw = pd.read_csv(real_data, dtype=str, keep_default_na=False)
    assert loaded.out.strip() == f"loaded {len(raw):,}, rejected 0"
    converted = dict(zip(raw["Prospect ID"], raw["Converted"].astype(int), strict=True))
    # the scores as the store holds them, each lead's with its outcome
    scores: dict[str, dict[str, float]] = {}
    with open_store(url) as store:
        for document in store.current_documents():
            for name, versions in document["results"].items():
                slot = versions["1"]
                if "_errors" not in slot and "_error" not in slot:
                    scores.setdefault(f"{name}@1", {})[document["Prospect ID"]] = slot["score"]
    # two models: engagement@1 (no score where the visits are missing) and quality@1 (five values, many ties)
    result = cli("evaluate", "--store", url, "--model", "engagement@1", "--model", "quality@1", "--json")
    assert result.code == 0, result.err
    evaluated = json.loads(result.out)
    assert evaluated["as_of"] == "decision" and evaluated["outcomes"] == len(raw)
    by_model = {m["model"]: m for m in evaluated["models"]}
    assert list(by_model) == ["engagement@1", "quality@1"]
    for model, entry in by_model.items():
        ids = sorted(scores[model])
        truth = [converted[i] for i in ids]
        assert entry["n"] == len(ids) and entry["not_scored"] == len(raw) - len(ids) and entry["late"] == 0
        assert entry["positives"] == sum(truth)
        assert entry["auc"] == pytest.approx(roc_auc_score(truth, [scores[model][i] for i in ids]), abs=1e-12)
        assert entry["auc_ci"][0] < entry["auc"] < entry["auc_ci"][1]
    [pair] = evaluated["comparisons"]
    both = sorted(set(scores["engagement@1"]) & set(scores["quality@1"]))
    truth = [converted[i] for i in both]
    assert (pair["a"], pair["b"], pair["n"]) == ("engagement@1", "quality@1", len(both))
    for side, model in (("auc_a", "engagement@1"), ("auc_b", "quality@1")):
        assert pair[side] == pytest.approx(roc_auc_score(truth, [scores[model][i] for i in both]), abs=1e-12)
    assert pair["auc_diff"] == pytest.approx(pair["auc_b"] - pair["auc_a"], abs=1e-12)
    assert 0 <= pair["p_value"] <= 1 and {"entering", "leaving"} <= set(pair["swap"])
    # the table ends with the same verdict, naming the two models and the leads both scored
    table = cli("evaluate", "--store", url, "--model", "engagement@1", "--model", "quality@1").out
    assert table.rstrip().splitlines()[-1] == pair["verdict"]
    assert (
        "quality@1" in pair["verdict"]
        and "engagement@1" in pair["verdict"]
        and f"on {len(both):,} leads" in pair["verdict"]
    )
