"""Outcomes: the parsing rules, and ``mlsm outcomes load`` end to end (the real command, a real SQLite store)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlsm.errors import InvalidId, InvalidOutcome
from mlsm.evaluation.outcomes import OutcomeRules, parse_at, parse_outcome
from mlsm.stores import open_store

from ..conftest import run_mlsm


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("0", 0), (" YES ", 1), ("No", 0), ("TRUE", 1), ("false", 0), (1, 1), (0.0, 0), (True, 1), (False, 0)],
)
def test_outcome_words_and_numbers(value: object, expected: int) -> None:
    assert parse_outcome(value) == expected


@pytest.mark.parametrize("value", ["maybe", "2", 2, 0.5, "y"])
def test_other_outcome_values_are_refused_with_the_value(value: object) -> None:
    with pytest.raises(InvalidOutcome, match="bad outcome"):
        parse_outcome(value)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_no_value_is_no_outcome_even_with_positive_labels(value: object) -> None:
    for positive in (None, ["won"]):
        with pytest.raises(InvalidOutcome, match="no outcome"):
            parse_outcome(value, positive)


def test_positive_labels_mean_1_and_every_other_value_0() -> None:
    positive = ["Won", "closed won"]
    assert [parse_outcome(v, positive) for v in ["won", " WON ", "Closed Won", "lost", "1", "yes"]] == [
        1,
        1,
        1,
        0,
        0,
        0,
    ]
    assert parse_outcome(1, ["1"]) == 1 and parse_outcome(1.0, ["1"]) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T09:30:00Z", 1714555800.0),
        ("2024-05-01T09:30:00", 1714555800.0),  # no zone: UTC
        ("2024-05-01T11:30:00+02:00", 1714555800.0),
        ("2024-05-01 09:30:00.5", 1714555800.5),
        ("2024-05-01", 1714521600.0),
        ("1714555800", 1714555800.0),
        (" 1714555800.25 ", 1714555800.25),
        (1714555800, 1714555800.0),
        (dt.datetime(2024, 5, 1, 9, 30), 1714555800.0),
        (dt.datetime(2024, 5, 1, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), 1714555800.0),
        (dt.date(2024, 5, 1), 1714521600.0),
    ],
)
def test_decision_times(value: object, expected: float) -> None:
    assert parse_at(value) == expected


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", True, float("nan"), 1714555800000, "1e400"])
def test_bad_decision_times_are_refused(value: object) -> None:
    with pytest.raises(InvalidOutcome, match="bad decision time"):
        parse_at(value)


def test_a_record_is_judged_by_the_id_rule_and_names_its_fields() -> None:
    rules = OutcomeRules(loaded_at=5.0, source="f.csv")
    outcome = rules.outcome(" 42 ", "Yes")
    assert (outcome.id, outcome.outcome, outcome.at, outcome.loaded_at, outcome.label) == ("42", 1, 5.0, 5.0, "Yes")
    with pytest.raises(InvalidId):
        rules.outcome(" ", "1")
    with pytest.raises(InvalidOutcome, match="field 'when' is 'soon'"):
        rules.outcome("1", "1", "soon", has_at=True, names=("converted", "when"))
    with pytest.raises(InvalidOutcome, match="no decision time: field 'at' is missing"):
        rules.outcome("1", "1", None, has_at=True)


# -- the command --------------------------------------------------------------------------------------------------


def load(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = run_mlsm("outcomes", "load", *args, "--store", f"sqlite:///{tmp_path / 'o.db'}", cwd=tmp_path)
    return result.code, result.out, result.err


def stored(tmp_path: Path) -> list[tuple[str, int, float]]:
    with open_store(f"sqlite:///{tmp_path / 'o.db'}", mode="read") as store:
        return [(o.id, o.outcome, o.at) for o in store.outcomes()]


def test_load_a_csv_with_rejects_and_a_summary(tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text(
        "lead,converted,when\n"
        "1,yes,2024-05-01T09:30:00Z\n"
        " 2 ,0,1714555800\n"
        ",1,2024-05-01\n"
        "3,maybe,2024-05-01\n"
        "4,1,soon\n"
        "5,TRUE,2024-05-01T11:30:00+02:00\n"
    )
    code, out, err = load(tmp_path, "o.csv", "--id-field", "lead", "--outcome", "converted", "--at", "when",
                          "--rejects", "rejects.jsonl")  # fmt: skip
    assert code == 0, err
    assert out.strip() == "loaded 3, rejected 3 (lines 4, 5, 6)"
    assert stored(tmp_path) == [("1", 1, 1714555800.0), ("2", 0, 1714555800.0), ("5", 1, 1714555800.0)]
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"].split(":")[0]) for r in rejects] == [
        (4, "no id"),
        (5, "bad outcome"),
        (6, "bad decision time"),
    ]
    assert rejects[1]["record"] == {"lead": "3", "converted": "maybe", "when": "2024-05-01"}
    assert "'converted'" in rejects[1]["reason"] and "'when'" in rejects[2]["reason"]


def test_loading_again_replaces_and_positive_labels_apply(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        '{"id": 1, "stage": "Won"}\n{"id": "2", "stage": "lost"}\n\n{"id": 3}\n{"id": 4, "stage": null}\n'
    )
    code, out, _ = load(tmp_path, "a.jsonl", "--id-field", "id", "--outcome", "stage", "--positive", "won", "closed")
    assert code == 0 and out.strip() == "loaded 2, rejected 2 (lines 4, 5)"
    first = stored(tmp_path)
    assert [(i, o) for i, o, _ in first] == [("1", 1), ("2", 0)]
    pq.write_table(pa.table({"id": [2], "stage": ["closed"]}), tmp_path / "b.parquet")
    code, out, _ = load(tmp_path, "b.parquet", "--id-field", "id", "--outcome", "stage", "--positive", "closed")
    assert code == 0 and out.strip() == "loaded 1, rejected 0"
    assert [(i, o) for i, o, _ in stored(tmp_path)] == [("1", 1), ("2", 1)]
    with open_store(f"sqlite:///{tmp_path / 'o.db'}", mode="read") as store:
        assert [o.outcome for o in store.outcome_history("2")] == [1, 0]


def test_parquet_timestamps_and_numbers(tmp_path: Path) -> None:
    moments = [dt.datetime(2024, 5, 1, 9, 30), None]
    pq.write_table(pa.table({"id": [1, 2], "y": [1, 0], "at": pa.array(moments, pa.timestamp("s"))}), tmp_path / "t.pq")
    code, out, _ = load(tmp_path, "t.pq", "--id-field", "id", "--outcome", "y", "--at", "at")
    assert code == 0 and out.strip() == "loaded 1, rejected 1 (lines 2)"
    assert stored(tmp_path) == [("1", 1, 1714555800.0)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "--id-field", "lead", "--outcome", "y"], "no such file"),
        (["o.csv", "--id-field", "nope", "--outcome", "y"], "id field 'nope'"),
        (["o.csv", "--id-field", "lead", "--outcome", "nope"], "column 'nope' is not in"),
        (["o.csv", "--id-field", "lead", "--outcome", "y", "--at", "when"], "column 'when' is not in"),
        (["o.csv", "--id-field", "lead", "--outcome", "y", "--rejects", "o.csv"], "is the input file"),
    ],
)
def test_setup_problems_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "o.csv").write_text("lead,y\n1,1\n")
    code, out, err = load(tmp_path, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("mlsm: error:") and message in err
    assert (tmp_path / "o.csv").read_text() == "lead,y\n1,1\n"
