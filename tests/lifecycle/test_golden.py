"""Golden files: recorded inputs and outputs, compared within a tolerance when a model changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlsm import Field, Model, SummaryModel
from mlsm.lifecycle.golden import (
    GoldenFileInvalid,
    check_golden,
    compare_output,
    golden_path,
    read_golden,
    record_golden,
)
from mlsm.lifecycle.preflight import generated_records

from ..conftest import CliResult

FIELDS = {"visits": Field(int, ge=0), "source": Field(str, required=False)}


def scorer(factor: float) -> Any:
    def score(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"score": round(data["visits"] * factor, 6), "source": data["source"]}

    return score


def test_outputs_match_within_the_tolerance_and_differences_are_named() -> None:
    assert compare_output({"s": 0.5, "t": [1, "a"]}, {"s": 0.5000001, "t": [1, "a"]}, 1e-6, 0) is None
    assert compare_output({"s": 0.5}, {"s": 0.6}, 1e-6, 1e-9) == "s: expected 0.5, got 0.6"
    assert compare_output({"s": 1}, {"s": True}, 1e-6, 1e-9) == "s: expected 1, got true"
    assert compare_output({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}, 0, 0) == "a.b[1]: expected 2, got 3"
    assert compare_output({"s": 1}, {}, 0, 0) == "s: missing (expected 1)"
    assert compare_output({}, {"new": 1}, 0, 0) == "new: not expected (got 1)"
    assert compare_output({"s": None}, {"s": 0.0}, 1, 1) == "s: expected null, got 0.0"


def test_recorded_cases_pass_until_the_model_changes_its_scores(tmp_path: Path) -> None:
    model = Model("lead", FIELDS, "1.0", scorer(0.1))
    path = golden_path(tmp_path / "golden", model)
    assert path.name == "lead@1.0.json"
    records = generated_records(model, [model], 15)
    assert len(records) == 15
    written, skipped = record_golden(model, [model], records, path)
    assert (written, skipped) == (15, 0)
    data = read_golden(path)
    assert data["model"] == "lead@1.0" and data["tolerance"] == {"rel": 1e-6, "abs": 1e-9}
    assert all("_status" not in case["output"] for case in data["cases"])

    assert check_golden(model, [model], path).summary == "ok 15/15"
    changed = Model("lead", FIELDS, "1.0", scorer(0.2))
    result = check_golden(changed, [changed], path)
    assert not result.passed
    assert result.summary.startswith("FAIL ") and result.summary.endswith("/15")
    assert any(": score: expected " in line for line in result.mismatches)


def test_the_tolerance_in_the_file_is_used_and_kept_when_recording_again(tmp_path: Path) -> None:
    model = Model("lead", FIELDS, "1.0", scorer(0.1))
    path = tmp_path / "lead@1.0.json"
    record_golden(model, [model], [{"visits": 10}, {"visits": 20, "source": "web"}], path)
    nudged = Model("lead", FIELDS, "1.0", scorer(0.1001))  # 0.1% off
    assert not check_golden(nudged, [nudged], path).passed
    data = json.loads(path.read_text())
    data["tolerance"] = {"rel": 0.01}
    path.write_text(json.dumps(data))
    assert check_golden(nudged, [nudged], path).passed
    record_golden(model, [model], [{"visits": 3}], path)
    assert read_golden(path)["tolerance"] == {"rel": 0.01, "abs": 1e-9}


def test_inputs_the_model_errors_on_are_not_recorded_and_an_error_later_is_a_mismatch(tmp_path: Path) -> None:
    model = Model("lead", FIELDS, "1.0", scorer(0.1))
    path = tmp_path / "g.json"
    assert record_golden(model, [model], [{"visits": 1}, {"visits": "lots"}], path, ids=["a", "b"]) == (1, 1)
    assert [case["id"] for case in read_golden(path)["cases"]] == ["a"]

    def broken(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("artifact missing")

    result = check_golden(Model("lead", FIELDS, "1.0", broken), [], path)
    assert result.mismatches == [
        "case 1 (id a): expected an output, got error: RuntimeError: artifact missing "
        f"({Path(__file__).name}:{broken.__code__.co_firstlineno + 1})"
    ]


def test_batch_and_summary_models_are_replayed_the_way_a_run_scores_them(tmp_path: Path) -> None:
    def batch(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"score": frame["visits"] / (frame["visits"].max() + 1)})  # depends on the batch

    model = Model("b", FIELDS, "1", batch, batch=True)
    summary = SummaryModel("s", [{"name": "b", "version": "1"}], "1", lambda data, results: dict(results["b"]["1"]))
    records = [{"visits": n} for n in (1, 5, 9)]
    for each in (model, summary):
        path = golden_path(tmp_path, each)
        record_golden(each, [model, summary], records, path)
        assert check_golden(each, [model, summary], path).passed
    assert read_golden(golden_path(tmp_path, summary))["cases"][2]["output"] == {"score": 0.9}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "cannot be read"),
        ('{"cases": 3}', 'must be an object with a "cases" list'),
        ('{"cases": [{"input": {}}]}', 'case 1 needs an "input" and an "output"'),
        ('{"cases": [], "tolerance": {"relative": 1}}', '"tolerance" must be like'),
    ],
)
def test_a_broken_golden_file_says_what_is_wrong(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "m@1.json"
    path.write_text(text)
    with pytest.raises(GoldenFileInvalid, match=problem):
        read_golden(path)


# -- mlsm test --record-golden, and the comparison in mlsm test ------------------------------------------------------

LEAD = """
    from mlsm import Field, Model

    def score(data, results):
        return {{"score": round(data["visits"] * {factor}, 6), "source": data["source"]}}

    MODELS = [Model("lead", {{"visits": Field(int, ge=0), "source": Field(str, required=False)}}, "1.0", score)]
"""


def test_record_then_test_catches_a_silent_change_of_scores(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    import xml.etree.ElementTree as ET

    models = write_models(LEAD.format(factor=0.1))
    recorded = cli("test", models, "--record-golden", "--golden-cases", "12")
    assert recorded.code == 0, recorded.err
    assert recorded.out.splitlines()[1].split() == ["lead@1.0", "12", "0", str(tmp_path / "golden" / "lead@1.0.json")]
    passed = cli("test", models, "--examples", "10")
    assert passed.code == 0 and passed.out.splitlines()[1].split()[-2:] == ["ok", "12/12"]

    write_models(LEAD.format(factor=0.11))  # a new version that silently changes the scores
    failed = cli("test", models, "--examples", "10", "--junit-xml", "junit.xml")
    assert failed.code == 1
    row = failed.out.splitlines()[1]
    assert " pass " not in row and " FAIL " in row and "golden lead@1.0.json:" in row
    assert "cases differ; first: case " in failed.out and ": score: expected " in failed.out
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert cases["lead@1.0 preflight"].find("failure") is None
    golden_failure = cases["lead@1.0 golden"].find("failure")
    assert golden_failure is not None and (golden_failure.text or "").count("\n") >= 1  # every differing case


def test_golden_cases_from_an_input_file_keep_their_ids_and_raw_values(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    models = write_models(LEAD.format(factor=0.5))
    (tmp_path / "leads.csv").write_text("lead,visits,source,other\nL1,4,web,x\nL2,n/a,ad,y\nL3,10,,z\nL4,2,ad,q\n")
    result = cli(
        "test",
        models,
        "--record-golden",
        "--golden-input",
        "leads.csv",
        "--id-field",
        "lead",
        "--golden-cases",
        "3",
        "--golden",
        "expected",
    )
    assert result.code == 0, result.err
    assert result.out.splitlines()[1].split()[:3] == ["lead@1.0", "2", "1"]  # L2 is invalid input: skipped
    cases = read_golden(tmp_path / "expected" / "lead@1.0.json")["cases"]
    assert cases == [
        {"id": "L1", "input": {"visits": "4", "source": "web"}, "output": {"score": 2.0, "source": "web"}},
        {"id": "L3", "input": {"visits": "10", "source": ""}, "output": {"score": 5.0, "source": None}},
    ]
    assert cli("test", models, "--golden", "expected", "--examples", "5").code == 0


def test_golden_input_needs_an_id_field_and_only_applies_when_recording(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    models = write_models(LEAD.format(factor=0.5))
    (tmp_path / "leads.csv").write_text("lead,visits\nL1,4\n")
    result = cli("test", models, "--record-golden", "--golden-input", "leads.csv")
    assert result.code == 2 and "--golden-input needs --id-field NAME" in result.err
    result = cli("test", models, "--golden-input", "leads.csv")
    assert result.code == 2 and "--golden-input only applies with --record-golden" in result.err
