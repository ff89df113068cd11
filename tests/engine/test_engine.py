"""The engine: one record or a chunk of columns, batch models, and per-model isolation of every failure."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsm import Engine, Field, Model, ModelDefinitionError, SummaryModel, SummaryModelListException
from mlsm.engine import describe_error

FIELDS = {"visits": Field(int, ge=0), "source": Field(str, required=False), "seconds": Field(float, required=False)}


def rules(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    score = 0.1 + 0.05 * min(data["visits"], 10) + (0.2 if data["source"] == "Reference" else 0.0)
    return {"score": round(score, 4), "visits": data["visits"]}


def batch_rules(frame: pd.DataFrame) -> pd.DataFrame:
    score = 0.1 + 0.05 * frame["visits"].clip(upper=10) + np.where(frame["source"] == "Reference", 0.2, 0.0)
    return pd.DataFrame({"score": score.round(4), "visits": frame["visits"]})


def winner(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    for name in ("batch", "rules"):
        slot = results[name]["1"]
        if "score" in slot:
            return {"score": slot["score"], "model": name}
    return {"score": None, "model": None}


def engine(*extra: Model) -> Engine:
    return Engine(
        [
            Model("rules", FIELDS, "1", rules, status="active"),
            Model("batch", FIELDS, "1", batch_rules, batch=True),
            *extra,
            SummaryModel("best", [{"name": "batch", "version": "1"}, {"name": "rules", "version": "1"}], "1", winner),
        ]
    )


def columns_of(records: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    from mlsm.fields import MISSING

    return {name: [r.get(name, MISSING) for r in records] for name in names}


def test_one_record_gets_a_slot_per_model_in_run_order() -> None:
    results = engine().score({"visits": "3", "source": "Reference"})
    assert list(results) == ["rules", "batch", "best"]
    assert results["rules"]["1"] == {"score": 0.45, "visits": 3, "_status": "active"}
    assert results["batch"]["1"] == {"score": 0.45, "visits": 3, "_status": "draft"}
    assert results["best"]["1"] == {"score": 0.45, "model": "batch", "_status": "draft"}


def test_a_chunk_of_columns_scores_like_records_one_by_one() -> None:
    records = [{"visits": "3", "source": "Reference"}, {"visits": "x"}, {"visits": 12, "seconds": "1.5"}, {}]
    e = engine()
    by_record = [e.score(r) for r in records]
    by_columns = e.score_columns(columns_of(records, e.input_fields), len(records))
    assert by_columns == by_record


record_values = st.one_of(
    st.none(), st.integers(-3, 30), st.sampled_from(["", "2", "4.0", "x", "Reference", "Google", "1.5", "nan"])
)
records_strategy = st.lists(
    st.fixed_dictionaries({}, optional={"visits": record_values, "source": record_values, "seconds": record_values}),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(records=records_strategy)
@pytest.mark.slow
def test_batch_and_real_time_paths_agree_on_any_records(records: list[dict[str, Any]]) -> None:
    e = engine()
    assert e.score_columns(columns_of(records, e.input_fields), len(records)) == [e.score(r) for r in records]


def test_arrow_string_columns_from_files_score_like_json_records() -> None:
    e = engine()
    columns = {"visits": pa.array(["3", "", "abc", "12.0"]), "source": pa.array(["Reference", "", "Google", "Select"])}
    results = e.score_columns(columns, 4)
    assert results[0]["rules"]["1"]["score"] == 0.45
    assert results[1]["rules"]["1"]["_error"] == "Expected 'data' input 'visits' not found"
    assert results[2]["batch"]["1"]["_errors"] == [{"field": "visits", "problem": "expected int, got 'abc'"}]
    assert results[3]["batch"]["1"]["visits"] == 12
    assert results[1]["best"]["1"] == {"score": None, "model": None, "_status": "draft"}


def test_batch_model_gets_only_valid_rows_and_its_declared_fields_typed() -> None:
    seen: list[pd.DataFrame] = []

    def spy(frame: pd.DataFrame) -> pd.DataFrame:
        seen.append(frame.copy())
        return pd.DataFrame({"n": range(len(frame))})

    e = Engine([Model("spy", FIELDS, "1", spy, batch=True)])
    columns = {"visits": pa.array(["1", "-5", "3"]), "source": pa.array(["a", "b", ""]), "other": pa.array(["x"] * 3)}
    results = e.score_columns(columns, 3)
    (frame,) = seen
    assert list(frame.columns) == ["visits", "source", "seconds"]
    assert frame["visits"].tolist() == [1, 3] and frame["visits"].dtype == np.int64
    assert frame["source"].tolist()[0] == "a" and pd.isna(frame["source"].tolist()[1])
    assert frame["seconds"].isna().all()
    assert [r["spy"]["1"].get("n") for r in results] == [0, None, 1]
    assert results[1]["spy"]["1"]["_error"] == "invalid input: field 'visits': must be >= 0, got -5"


def test_batch_model_output_columns_become_result_keys_in_row_order() -> None:
    def double(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"twice": frame["visits"] * 2, "label": ["v" + str(v) for v in frame["visits"]]})

    results = Engine([Model("d", {"visits": int}, "1", double, batch=True)]).score_columns({"visits": [5, 1, 3]}, 3)
    assert [r["d"]["1"] for r in results] == [
        {"twice": 10, "label": "v5", "_status": "draft"},
        {"twice": 2, "label": "v1", "_status": "draft"},
        {"twice": 6, "label": "v3", "_status": "draft"},
    ]


def test_nullable_ints_and_bools_reach_batch_models_as_pandas_na() -> None:
    seen = {}

    def spy(frame: pd.DataFrame) -> pd.DataFrame:
        seen.update({name: frame[name].dtype for name in frame})
        return pd.DataFrame({"ok": [True] * len(frame)})

    fields = {"n": Field(int, required=False), "flag": Field(bool, required=False)}
    Engine([Model("m", fields, "1", spy, batch=True)]).score_columns({"n": [1, None], "flag": ["yes", ""]}, 2)
    assert str(seen["n"]) == "Int64" and str(seen["flag"]) == "boolean"


# -- isolation -------------------------------------------------------------------------------------------------


def bad(kind: str) -> Any:
    def record_model(data: dict[str, Any], results: dict[str, Any]) -> Any:
        if kind == "raise":
            raise ValueError("model broke\non two lines")
        if kind == "exit":
            raise SystemExit(3)
        if kind == "list":
            return [1, 2]
        if kind == "nan":
            return {"score": math.nan}
        if kind == "object":
            return {"when": object()}
        if kind == "numpy":
            return {"score": np.float32(0.5), "n": np.int64(3), "v": np.array([1, 2])}
        return {"ok": 1}

    return record_model


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("raise", "ValueError: model broke on two lines (test_engine.py:"),
        ("exit", "SystemExit: 3"),
        ("list", "bad output: expected a dict, got list"),
        ("nan", "bad output: key 'score': nan is not allowed (numbers must be finite)"),
        ("object", "bad output: key 'when': value of type object is not JSON-serializable"),
    ],
)
def test_a_broken_model_errors_in_its_own_slot_only(kind: str, error: str) -> None:
    e = engine(Model("bad", FIELDS, "1", bad(kind)))
    for results in [e.score({"visits": 2}), *e.score_columns({"visits": [2, 4]}, 2)]:
        assert describe_error(results["bad"]["1"]).startswith(error)
        assert results["rules"]["1"]["score"] > 0 and results["batch"]["1"]["score"] > 0
        assert "score" in results["best"]["1"]


def raises(message: str, kind: type[Exception] = ValueError) -> Any:
    def model(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        raise kind(message)

    return model


RAISES_AT = f"test_engine.py:{raises.__code__.co_firstlineno + 2}"


@pytest.mark.parametrize("message", ["Hi! I am an error message", "", "two\nlines  kept"])
def test_an_exception_slot_holds_str_of_the_exception_as_the_original_wrote_it(message: str) -> None:
    models = [Model("m", {"visits": int}, "1", raises(message), status="active"),
              Model("b", {"visits": int}, "1", lambda frame: 1 / 0, batch=True)]  # fmt: skip
    e = Engine(models)
    for results in [e.score({"visits": 1}), *e.score_columns({"visits": [1, 2]}, 2)]:
        assert results["m"]["1"] == {
            "_error": message,
            "_errors": [{"field": None, "problem": message, "type": "ValueError", "at": RAISES_AT}],
            "_status": "active",
        }
        batch = results["b"]["1"]
        assert batch["_error"] == "division by zero" and batch["_status"] == "draft"
        assert batch["_errors"][0]["type"] == "ZeroDivisionError"
        assert batch["_errors"][0]["at"].startswith("test_engine.py:")


def test_an_exception_raised_inside_mlsm_points_at_the_models_own_line() -> None:
    from mlsm.fields import FieldCheck

    def model(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        FieldCheck("x", "not a type")  # raises in mlsm/fields.py: the model's line is the one to show
        return {}

    slot = Engine([Model("m", {}, "1", model)]).score({})["m"]["1"]
    assert slot["_errors"][0]["type"] == "ModelDefinitionError"
    assert slot["_errors"][0]["at"] == f"test_engine.py:{model.__code__.co_firstlineno + 1}"


def test_missing_fields_read_as_the_original_wrote_them_and_invalid_ones_follow() -> None:
    fields = {"a": int, "b": int, "c": Field(int, ge=0), "d": str}
    e = Engine([Model("m", fields, "1", lambda data, results: {}, status="active")])
    record = {"b": None, "c": -1, "d": "x"}  # a absent, b null: both missing; c out of bounds
    for slot in [e.score(record)["m"]["1"], e.score_columns({k: [v] for k, v in record.items()}, 1)[0]["m"]["1"]]:
        assert slot == {
            "_error": "Expected 'data' input 'a' not found; Expected 'data' input 'b' not found; "
            "invalid input: field 'c': must be >= 0, got -1",
            "_errors": [
                {"field": "a", "problem": "missing (required)"},
                {"field": "b", "problem": "missing (required)"},
                {"field": "c", "problem": "must be >= 0, got -1"},
            ],
            "_status": "active",
        }


def test_every_error_slot_carries_the_models_status() -> None:
    models = [
        Model("raises", {}, "1", raises("no"), status="active"),
        Model("output", {}, "1", lambda data, results: [1], status="active"),
        Model("invalid", {"a": int}, "1", lambda data, results: {}, status="active"),
        Model("frame", {}, "1", lambda frame: [1], batch=True, status="active"),
        SummaryModel("summary", [], "1", raises("no"), status="active"),
    ]
    e = Engine(models)
    nested = Engine(models, layout="nested").score({"data": {}})
    for results in [e.score({"a": "x"}), e.score_columns({"a": ["x"]}, 1)[0], nested]:
        for name, versions in results.items():
            assert "_error" in versions["1"] and versions["1"]["_status"] == "active", name


def test_numpy_values_in_outputs_become_plain_json_values() -> None:
    slot = Engine([Model("np", {}, "1", bad("numpy"))]).score({})["np"]["1"]
    assert slot == {"score": 0.5, "n": 3, "v": [1, 2], "_status": "draft"}
    assert type(slot["n"]) is int


@pytest.mark.parametrize(
    ("output", "error"),
    [
        (lambda f: f["visits"].tolist(), "bad output: expected a pandas DataFrame with 3 rows, got list"),
        (lambda f: pd.DataFrame({"s": [1]}), "bad output: expected a DataFrame with 3 rows (one per input row), got 1"),
        (lambda f: pd.DataFrame({0: [1, 2, 3]}), "bad output: column name 0 is not a string"),
        (lambda f: 1 / 0, "ZeroDivisionError: division by zero"),
    ],
)
def test_a_broken_batch_model_errors_for_its_rows_only(output: Any, error: str) -> None:
    e = engine(Model("bad", FIELDS, "1", output, batch=True))
    results = e.score_columns({"visits": [1, 2, 3]}, 3)
    for row in results:
        assert describe_error(row["bad"]["1"]).startswith(error)
        assert row["bad"]["1"]["_status"] == "draft"
        assert row["batch"]["1"]["score"] > 0


def test_non_finite_batch_output_errors_only_the_rows_that_have_it() -> None:
    def half_nan(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"s": [1.0, math.nan, math.inf], "k": ["a", object(), "c"]})

    results = Engine([Model("m", {"visits": int}, "1", half_nan, batch=True)]).score_columns({"visits": [1, 2, 3]}, 3)
    slots = [r["m"]["1"] for r in results]
    assert slots[0] == {"s": 1.0, "k": "a", "_status": "draft"}
    assert slots[1]["_error"] == "bad output: column 's': nan is not allowed (numbers must be finite)"
    assert slots[2]["_error"] == "bad output: column 's': inf is not allowed (numbers must be finite)"


# -- planning --------------------------------------------------------------------------------------------------


def test_invalid_status_is_an_error_before_any_work() -> None:
    with pytest.raises(ModelDefinitionError, match="invalid status 'prod'; valid statuses are: 'draft', 'active'"):
        Engine([Model("m", {}, "1", rules, status="prod")])


def test_duplicate_name_version_is_an_error_before_any_work() -> None:
    with pytest.raises(ModelDefinitionError, match="duplicate model 'm@1'"):
        Engine([Model("m", {}, "1", rules), Model("m", {}, "1", rules)])
    Engine([Model("m", {}, "1", rules), Model("m", {}, "2", rules)])  # versions side by side are fine


def test_summary_dependencies_are_checked_at_planning() -> None:
    summary = SummaryModel("s", [{"name": "m", "version": "9"}], "1", winner)
    with pytest.raises(SummaryModelListException, match=r"m@9 \(needed by s@1\)"):
        Engine([Model("m", {}, "1", rules), summary])


def test_bad_field_specs_are_errors_at_planning() -> None:
    with pytest.raises(ModelDefinitionError, match="field 'x'"):
        Engine([Model("m", {"x": "int"}, "1", rules)])


def test_summary_models_run_after_plain_models_whatever_the_order_given() -> None:
    summary = SummaryModel("s", [{"name": "rules", "version": "1"}], "1", lambda data, results: {"seen": list(results)})
    e = Engine([summary, Model("rules", FIELDS, "1", rules)])
    assert e.score({"visits": 1})["s"]["1"]["seen"] == ["rules"]


def test_scoring_one_record_does_not_import_pandas() -> None:
    code = (
        "import sys, mlsm\n"
        "e = mlsm.Engine([mlsm.Model('m', {'a': int}, '1', lambda data, results: {'b': data['a'] + 1})])\n"
        "assert e.score({'a': '2'})['m']['1']['b'] == 3\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_model_that_changes_its_data_does_not_change_what_other_models_see() -> None:
    def vandal(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        data["visits"] = -999
        return {}

    def witness(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"visits": data["visits"]}

    e = Engine([Model("vandal", FIELDS, "1", vandal), Model("witness", FIELDS, "1", witness)])
    assert e.score({"visits": 3})["witness"]["1"]["visits"] == 3
    assert e.score_columns({"visits": [3]}, 1)[0]["witness"]["1"]["visits"] == 3


def test_batch_models_reading_the_same_fields_cannot_change_each_others_frame() -> None:
    # such models share one frame build; each gets a shallow copy, and copy-on-write keeps changes its own
    def vandal(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[0, "visits"] = -999
        frame["source"] = "vandalized"
        frame["extra"] = 1
        del frame["visits"]
        frame.index = frame.index[::-1]
        return pd.DataFrame({"n": range(len(frame))}, index=frame.index)

    def witness(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"visits": frame["visits"], "source": frame["source"], "columns": len(frame.columns)})

    e = Engine([Model("vandal", FIELDS, "1", vandal, batch=True), Model("witness", FIELDS, "1", witness, batch=True)])
    records = [{"visits": 3, "source": "Reference"}, {"visits": 5, "source": "Google"}]
    expected = [
        {"visits": 3, "source": "Reference", "columns": 3, "_status": "draft"},
        {"visits": 5, "source": "Google", "columns": 3, "_status": "draft"},
    ]
    assert [row["witness"]["1"] for row in e.score_columns(columns_of(records, list(FIELDS)), 2)] == expected
    assert [e.score(record)["witness"]["1"] for record in records] == expected


def test_a_slot_spoiled_after_its_check_costs_only_that_slot_when_stored() -> None:
    from mlsm.documents import decode, encode, make_document

    def spoiler(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        results["rules"]["1"]["bad"] = object()  # a summary model reaching into another model's result
        results["rules"]["1"][("tuple", "key")] = 1
        return {"done": True}

    summary = SummaryModel("spoil", [{"name": "rules", "version": "1"}], "1", spoiler)
    results = Engine([Model("rules", FIELDS, "1", rules), summary]).score({"visits": 1})
    stored = decode(encode(make_document("id", "x", results, run="r", timestamp=0)))
    assert stored["results"]["rules"]["1"]["_error"].startswith("bad output:")
    assert stored["results"]["spoil"]["1"] == {"done": True, "_status": "draft"}


def test_non_string_keys_in_an_output_are_a_bad_output_on_both_paths() -> None:
    e = Engine([Model("keys", {"n": int}, "1", lambda data, results: {1: "one", "ok": True})])
    for results in [e.score({"n": 1}), *e.score_columns({"n": [1]}, 1)]:
        assert results["keys"]["1"]["_error"] == "bad output: key 1 is not a string"
