"""The lead-scoring example and ``mlsm demo``, end to end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

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


def test_demo_scores_leads_and_prints_the_top_ten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], example_artifacts: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    run = run_demo(records=3000, store_url=url, seed=3, workdir=tmp_path)
    out = capsys.readouterr().out
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
