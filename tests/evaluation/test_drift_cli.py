"""``mlsm drift`` end to end: two real runs, a shifted field, the table, the JSON object and the setup errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mlsm import RunRecord, open_store

from ..conftest import run_mlsm

MODELS = """
    import pandas as pd
    from mlsm import Field, Model

    def by_amount(frame):
        return pd.DataFrame({"score": frame["amount"] / 100.0})

    def by_channel(data, results):
        return {"score": 0.8 if data["channel"] == "web" else 0.3}

    MODELS = [
        Model("amount", {"amount": Field(float, ge=0), "visits": Field(int, required=False)}, "1.0", by_amount,
              batch=True, status="active"),
        Model("channel", {"channel": Field(str, choices=["web", "phone", "mail"])}, "1.0", by_channel,
              status="active"),
    ]
"""


def _write(path: Path, seed: int, shift: float, prefix: str, rows: int = 3000) -> None:
    rng = np.random.default_rng(seed)
    amounts = rng.gamma(4, 10, rows) + shift
    visits = rng.poisson(3, rows)
    channels = rng.choice(["web", "phone", "mail"], rows, p=[0.6, 0.3, 0.1])
    lines = ["id,amount,visits,channel"]
    for i in range(rows):
        visit = "" if i % 20 == 0 else str(visits[i])
        lines.append(f"{prefix}{i},{amounts[i]:.3f},{visit},{channels[i]}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("drift")
    (folder / "models.py").write_text(textwrap.dedent(MODELS))
    _write(folder / "reference.csv", seed=1, shift=0.0, prefix="r")
    _write(folder / "current.csv", seed=2, shift=25.0, prefix="c")  # amount moves up, the rest is resampled
    url = f"sqlite:///{folder / 'results.db'}"
    for name in ("reference", "current"):
        done = run_mlsm("run", "models.py", f"{name}.csv", "--id-field", "id", "--store", url, "--run-id", name,
                        "--chunk-size", "700", "--no-progress", cwd=folder)  # fmt: skip
        assert done.code == 0, done.err
    with open_store(url) as store:
        store.start_run(RunRecord.new("old", {"models": ["amount@1.0"]}))  # a run from before profiles
    return folder, url


@pytest.mark.slow
def test_a_shifted_field_is_act_and_the_others_stable(two_runs: tuple[Path, str]) -> None:
    folder, url = two_runs
    done = run_mlsm("drift", "--store", url, "--reference", "reference", "--current", "current", "--json", cwd=folder)
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert set(report) == {"reference", "current", "fields", "scores"}
    assert (report["reference"], report["current"]) == ("reference", "current")
    fields = {item["field"]: item for item in report["fields"]}
    assert list(fields) == ["amount", "visits", "channel"]
    for item in report["fields"]:
        assert set(item) == {"field", "psi", "missing_ref", "missing_cur", "status"}
        assert isinstance(item["psi"], float)
    assert fields["amount"]["status"] == "act" and fields["amount"]["psi"] >= 0.25
    assert fields["visits"]["status"] == "stable" and fields["channel"]["status"] == "stable"
    assert fields["visits"]["missing_ref"] == pytest.approx(0.05) and fields["visits"]["missing_cur"] == 0.05
    assert fields["amount"]["missing_ref"] == 0.0
    scores = {(item["model"], item["key"]): item for item in report["scores"]}
    assert list(scores) == [("amount@1.0", "score"), ("channel@1.0", "score")]
    for item in report["scores"]:
        assert set(item) == {"model", "key", "psi", "error_rate_ref", "error_rate_cur", "status"}
        assert item["error_rate_ref"] == 0.0 and item["error_rate_cur"] == 0.0
    assert scores[("amount@1.0", "score")]["status"] == "act"
    assert scores[("channel@1.0", "score")]["status"] == "stable"


@pytest.mark.slow
def test_the_table_and_configurable_thresholds(two_runs: tuple[Path, str]) -> None:
    folder, url = two_runs
    args = ["drift", "--store", url, "--reference", "reference", "--current", "current"]
    table = run_mlsm(*args, cwd=folder)
    assert table.code == 0, table.err
    rows = {line.split()[0]: line.split() for line in table.out.splitlines() if line.startswith("  ")}
    assert rows["amount"][-1] == "act" and rows["visits"][-1] == "stable" and rows["channel"][-1] == "stable"
    assert "stable < 0.1 <= watch < 0.25 <= act" in table.out
    strict = run_mlsm(*args, "--watch", "0", "--act", "0", "--json", cwd=folder)
    assert {item["status"] for item in json.loads(strict.out)["fields"]} == {"act"}
    # the same run against itself: nothing moved
    same = run_mlsm("drift", "--store", url, "--reference", "current", "--current", "current", "--json", cwd=folder)
    assert all(item["psi"] == 0.0 and item["status"] == "stable" for item in json.loads(same.out)["fields"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reference", "current", "extra", "message"),
    [
        ("reference", "nope", [], "no run 'nope'"),
        ("nope", "current", [], "no run 'nope'"),
        ("old", "current", [], "run 'old' has no profile"),
        ("reference", "current", ["--watch", "0.3", "--act", "0.2"], "watch <= act"),
    ],
)
def test_setup_problems_are_one_line_and_exit_2(
    two_runs: tuple[Path, str], reference: str, current: str, extra: list[str], message: str
) -> None:
    folder, url = two_runs
    done = run_mlsm("drift", "--store", url, "--reference", reference, "--current", current, *extra, cwd=folder)
    assert done.code == 2
    assert done.out == ""
    assert len(done.err.strip().splitlines()) == 1 and message in done.err, done.err


@pytest.mark.slow
def test_an_absent_store_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    done = run_mlsm("drift", "--store", url, "--reference", "a", "--current", "b", cwd=tmp_path)
    assert done.code == 2 and len(done.err.strip().splitlines()) == 1, done.err
