"""The lead-scoring example and ``mlsm demo``, end to end."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlsm import open_store
from mlsm.demo import run_demo

from .conftest import EXAMPLE, CliResult


@pytest.mark.slow
def test_example_models_pass_their_preflight(cli: Callable[..., CliResult], example_artifacts: Path) -> None:
    result = cli("test", EXAMPLE / "models.py")
    assert result.code == 0, result.out
    assert "5 of 5 models passed" in result.out


def test_example_models_are_listed_with_the_draft_challenger(
    cli: Callable[..., CliResult], example_artifacts: Path
) -> None:
    rows = [line.split()[:5] for line in cli("models", EXAMPLE / "models.py").out.splitlines()[1:]]
    assert rows == [
        ["rules", "1.0", "active", "model", "no"],
        ["logit", "1.0", "active", "model", "yes"],
        ["gbm", "1.0", "active", "model", "yes"],
        ["gbm", "2.0", "draft", "model", "yes"],
        ["lead_score", "1.0", "active", "summary", "no"],
    ]


@pytest.mark.slow
def test_the_golden_cases_score_the_same_one_lead_at_a_time(example_artifacts: Path) -> None:
    """``mlsm test`` checks the golden files on a chunk (the pipelines themselves); one lead at a time takes the
    compiled form and no DataFrame: the same scores."""
    from mlsm import Engine
    from mlsm.lifecycle.golden import compare_output
    from mlsm.lifecycle.project import load_model_set

    engine = Engine(load_model_set(str(EXAMPLE / "models.py")).models)
    checked = 0
    for path in sorted((EXAMPLE / "golden").glob("*.json")):
        golden = json.loads(path.read_text())
        name, _, version = golden["model"].rpartition("@")
        for case in golden["cases"]:
            slot = {k: v for k, v in engine.score(case["input"])[name][version].items() if k != "_status"}
            tolerance = golden["tolerance"]
            assert compare_output(case["output"], slot, tolerance["rel"], tolerance["abs"]) is None, case["id"]
            checked += 1
    assert checked == 5 * 400


@dataclass(frozen=True)
class Demo:
    run: dict[str, Any]
    out: str
    folder: Path
    url: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, example_artifacts: Path) -> Demo:
    """``mlsm demo`` on 3,000 leads, run once for the tests of its output."""
    folder = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{folder / 'demo.db'}"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        run = run_demo(records=3000, store_url=url, seed=3, workdir=folder)
    return Demo(run, out.getvalue(), folder, url)


def test_demo_scores_leads_and_prints_the_top_ten(demo: Demo) -> None:
    run, out, url = demo.run, demo.out, demo.url
    assert run["status"] == "completed"
    counts = run["counts"]
    assert counts["read"] == 3000 and counts["scored"] + counts["rejected"] == 3000
    assert counts["models"]["lead_score@1.0"]["errors"] == 0
    assert run["info"]["provenance"]["models"]["gbm@2.0"]["source"] == str(EXAMPLE / "models.py")
    top = re.findall(r"^  (\S{36})\s+(\d\.\d{3})\s+([ABCD])\s+(\S+)$", out, flags=re.M)
    assert len(top) == 10
    scores = [float(score) for _, score, _, _ in top]
    assert scores == sorted(scores, reverse=True)
    with open_store(url) as store:
        best = store.current(top[0][0])
        assert best is not None
        assert best["results"]["lead_score"]["1.0"]["score"] == pytest.approx(scores[0], abs=5e-4)
        assert best["results"]["gbm"]["2.0"]["_status"] == "draft"
        every = [d["results"]["lead_score"]["1.0"]["score"] for d in store.run_documents(run["id"])]
    assert max(every) == pytest.approx(scores[0], abs=5e-4)


def test_demo_ends_with_the_champion_vs_challenger_verdict_and_the_report(
    demo: Demo, cli: Callable[..., CliResult]
) -> None:
    import pandas as pd

    run, out, url, folder = demo.run, demo.out, demo.url, demo.folder
    # every lead with an id has its outcome, decided after its score: the decision-time join finds them all
    assert f"  loaded {run['counts']['scored']:,}, rejected {run['counts']['rejected']:,}" in out
    leads = pd.read_csv(folder / "leads-3000-3.csv", dtype=str, keep_default_na=False)
    outcomes = pd.read_csv(folder / "outcomes-3000-3.csv", dtype=str, keep_default_na=False)
    truth = dict(zip(leads["Prospect ID"], leads["Converted"], strict=True))
    assert all(truth[i] == c for i, c in zip(outcomes["Prospect ID"], outcomes["Converted"], strict=True))
    at = pd.to_datetime(outcomes["decided_at"], utc=True)
    assert at.min().timestamp() > run["ended"] and at.max().timestamp() < run["ended"] + 3600
    assert at.nunique() > 100  # spread over the window, not one moment
    evaluated = json.loads(cli("evaluate", "--store", url, "--model", "gbm@1.0", "--model", "gbm@2.0", "--json").out)
    assert [(m["model"], m["late"], m["n"]) for m in evaluated["models"]] == [
        (model, 0, run["counts"]["models"][model]["ok"]) for model in ("gbm@1.0", "gbm@2.0")
    ]
    [pair] = evaluated["comparisons"]
    # the demo's last table ends with mlsm evaluate's own verdict on the champion and the challenger
    lines = out.splitlines()
    assert f"Champion vs challenger: mlsm evaluate --store {url} --model gbm@1.0 --model gbm@2.0" in lines
    assert pair["verdict"] in lines and re.search(r"gbm@[12]\.0.*AUC [+-]\d\.\d{3} .* on [\d,]+ leads", pair["verdict"])
    report = folder / "report.html"
    assert f"Report: {report} (open it in a browser)" in lines
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "gbm@2.0" in page and "rules@1.0" in page


def test_the_synthetic_leads_are_shaped_like_the_real_data(real_data: Path) -> None:
    import pandas as pd

    from mlsm.demo import _module

    fake = _module(EXAMPLE, "leads").generate_leads(5000, seed=1)
    real = pd.read_csv(real_data, dtype=str, keep_default_na=False)
    assert set(fake.columns) <= set(real.columns)
    for column in ("Lead Origin", "What is your current occupation"):
        top_fake = fake[column].value_counts(normalize=True).head(3)
        top_real = real[column].value_counts(normalize=True).head(3)
        assert list(top_fake.index) == list(top_real.index)
        assert (abs(top_fake - top_real) < 0.05).all()
    assert (fake["City"] == "Select").mean() == pytest.approx((real["City"] == "Select").mean(), abs=0.03)


def test_example_output_documents_are_json(
    cli: Callable[..., CliResult], example_artifacts: Path, tmp_path: Path
) -> None:
    from mlsm.demo import _module

    path = _module(EXAMPLE, "leads").write_leads(tmp_path / "leads.csv", 500, seed=5)
    # the example's active models live in mlsm's own repository, on whatever branch this checkout is
    args = ("--id-field", "Prospect ID", "--output", "o.jsonl", "--allow-unreleased")
    assert cli("run", EXAMPLE / "models.py", path, *args).code == 0
    docs = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert {d["results"]["lead_score"]["1.0"]["model"] for d in docs} <= {"gbm@1.0", "logit@1.0", "rules@1.0"}


def test_training_leaves_no_helper_module_or_path_behind(tmp_path: Path) -> None:
    import sys

    from mlsm.demo import ensure_artifacts

    folder = tmp_path / "example"
    (folder / "artifacts").mkdir(parents=True)
    (folder / "features_for_leak_test.py").write_text("SCALE = 2\n")
    (folder / "train.py").write_text(
        "import json, sys\n"
        "from pathlib import Path\n"
        "sys.path.insert(0, str(Path(__file__).resolve().parent))  # as the example's train.py does\n"
        "from features_for_leak_test import SCALE\n"
        "def train():\n"
        "    report = Path(__file__).resolve().parent / 'artifacts' / 'report.json'\n"
        "    report.write_text(json.dumps({'m@1': {'sklearn': 'any', 'scale': SCALE}}))\n"
    )
    ensure_artifacts(folder)
    assert json.loads((folder / "artifacts" / "report.json").read_text())["m@1"]["scale"] == 2
    # another model source's own `features_for_leak_test` must not find this one
    assert "features_for_leak_test" not in sys.modules
    assert str(folder) not in sys.path and str(folder.resolve()) not in sys.path
