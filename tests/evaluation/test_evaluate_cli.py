"""``mlsm evaluate`` end to end: leads scored by two models, outcomes loaded, the verdict and the JSON."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from ..browser import BrowserUnavailable, open_page
from ..conftest import CliResult

MODELS = """
import math
from mlsm import Model

def champion(data, results):
    return {"score": 1 / (1 + math.exp(-(data["signal"] + 2.0 * data["noise"])))}

def challenger(data, results):
    if data["segment"] == "partner":
        raise ValueError("cannot score partner leads")
    return {"score": 1 / (1 + math.exp(-(data["signal"] + 0.3 * data["noise"])))}

MODELS = [
    Model("lead", {"signal": float, "noise": float}, "1.0", champion),
    Model("lead", {"signal": float, "noise": float, "segment": str}, "2.0", challenger, status="draft"),
]
"""


def _leads(tmp_path: Path, n: int = 1500) -> tuple[Path, Path, dict[str, dict[str, float | int | str]]]:
    rng = random.Random(42)
    rows = {}
    for i in range(n):
        signal, noise = rng.gauss(0, 1), rng.gauss(0, 1)
        segment = "partner" if i % 10 == 0 else "web"
        converted = int(rng.random() < 1 / (1 + math.exp(-2 * signal)))
        rows[f"L{i}"] = {"signal": signal, "noise": noise, "segment": segment, "converted": converted}
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "lead_id,signal,noise,segment\n"
        + "".join(f"{k},{r['signal']!r},{r['noise']!r},{r['segment']}\n" for k, r in rows.items())
    )
    outcomes = tmp_path / "outcomes.csv"
    decided = time.time() + 5  # after the run: the run's scores were live when the leads were handed over
    outcomes.write_text(
        "lead_id,converted,decided\n" + "".join(f" {k} ,{r['converted']},{decided}\n" for k, r in rows.items())
    )
    return leads, outcomes, rows


@pytest.mark.slow
def test_evaluate_names_the_better_model_with_the_auc_scikit_learn_gives(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    (tmp_path / "models.py").write_text(MODELS)
    leads, outcomes, rows = _leads(tmp_path)
    store = f"sqlite:///{tmp_path / 'scores.db'}"
    ran = cli("run", "models.py", str(leads), "--id-field", "lead_id", "--store", store, "--allow-unreleased")
    assert ran.code == 0, ran.err
    loaded = cli(
        "outcomes", "load", str(outcomes), "--store", store, "--id-field", "lead_id", "--outcome", "converted",
        "--at", "decided",
    )  # fmt: skip
    assert loaded.code == 0, loaded.err
    assert "loaded 1,500" in loaded.out or "loaded 1500" in loaded.out

    result = cli("evaluate", "--store", store, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["as_of"] == "decision" and data["outcomes"] == 1500
    champion, challenger = data["models"]
    assert champion["model"] == "lead@1.0" and challenger["model"] == "lead@2.0"
    assert champion["n"] == 1500 and champion["not_scored"] == 0
    assert challenger["n"] == 1350 and challenger["not_scored"] == 150  # partner leads: an error in its slot

    def score(r: dict[str, float | int | str], weight: float) -> float:
        return 1 / (1 + math.exp(-(float(r["signal"]) + weight * float(r["noise"]))))

    ys = [int(r["converted"]) for r in rows.values()]
    assert abs(champion["auc"] - roc_auc_score(ys, [score(r, 2.0) for r in rows.values()])) < 1e-9
    web = [r for r in rows.values() if r["segment"] == "web"]
    assert abs(challenger["auc"] - roc_auc_score([r["converted"] for r in web], [score(r, 0.3) for r in web])) < 1e-9
    (pair,) = data["comparisons"]
    assert (pair["a"], pair["b"], pair["n"]) == ("lead@1.0", "lead@2.0", 1350)
    assert pair["auc_diff"] > 0 and pair["p_value"] < 0.05

    table = cli("evaluate", "--store", store)
    assert table.code == 0
    assert table.out.strip().splitlines()[-1].startswith("lead@2.0 ranks better than lead@1.0: AUC +")

    # the report of the same store, in a real headless Chromium: every chart drawn, nothing asked of the network
    page_file = tmp_path / "report.html"
    written = cli("report", "--store", store, "--output", str(page_file))
    assert written.code == 0, written.err
    assert str(page_file) in written.out
    html = page_file.read_text()
    assert "lead@2.0 ranks better than lead@1.0" in html
    try:
        page = open_page(page_file)
    except BrowserUnavailable as exc:
        pytest.skip(f"headless Chromium is not available ({exc}); scripts/ensure-chromium installs it")
    try:
        total, missing = page.drawn()
        assert total >= 8 and missing == []  # swap, gain, lift, ROC, calibration, 2 histograms, runs, errors
        assert page.errors == [] and page.failed_requests == []
        assert page.requests == [page.url]
        assert page.screenshot(tmp_path / "report.png").stat().st_size > 50_000
    finally:
        page.close()

    # decided before anything was scored: every score is late
    early = cli("evaluate", "--store", store, "--json", "--as-of", "decision", "--until", "2000-01-01")
    assert early.code == 2 and "no outcomes" in early.err


def test_evaluate_without_outcomes_or_store_is_one_line_and_exit_2(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    missing = cli("evaluate", "--store", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.code == 2 and len(missing.err.strip().splitlines()) == 1
    (tmp_path / "models.py").write_text(MODELS)
    (tmp_path / "in.csv").write_text("lead_id,signal,noise,segment\n1,0.5,0.1,web\n")
    store = f"sqlite:///{tmp_path / 's.db'}"
    assert cli("run", "models.py", "in.csv", "--id-field", "lead_id", "--store", store, "--allow-unreleased").code == 0
    empty = cli("evaluate", "--store", store)
    assert empty.code == 2 and "mlsm outcomes load" in empty.err
    bad = cli("evaluate", "--store", store, "--since", "yesterday")
    assert bad.code == 2 and "--since 'yesterday'" in bad.err


@pytest.mark.slow
def test_the_report_shows_the_drift_between_two_runs(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(MODELS)
    rng = random.Random(3)
    for name, shift in (("ref.csv", 0.0), ("cur.csv", 3.0)):
        rows = "".join(f"{i},{rng.gauss(shift, 1)!r},{rng.gauss(0, 1)!r},web\n" for i in range(2000))
        (tmp_path / name).write_text("lead_id,signal,noise,segment\n" + rows)
    store = f"sqlite:///{tmp_path / 's.db'}"
    for run in ("ref", "cur"):
        ran = cli("run", "models.py", f"{run}.csv", "--id-field", "lead_id", "--store", store, "--run-id", run,
                  "--allow-unreleased")  # fmt: skip
        assert ran.code == 0, ran.err
    page = tmp_path / "drift.html"
    written = cli("report", "--store", store, "-o", str(page), "--reference", "ref", "--current", "cur")
    assert written.code == 0, written.err
    html = page.read_text()
    assert "signal" in html and "Act" in html and "Stable" in html  # the shifted field acts, the noise is stable
    half = cli("report", "--store", store, "-o", str(page), "--reference", "ref")
    assert half.code == 2 and "--current" in half.err
    unknown = cli("report", "--store", store, "-o", str(page), "--reference", "ref", "--current", "nope")
    assert unknown.code == 2 and "nope" in unknown.err
