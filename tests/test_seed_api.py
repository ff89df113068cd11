"""The original API, exactly: Model, SummaryModel, RunModels, RunSummaryModels, RunModelsAll, MongoDB storage."""

from __future__ import annotations

import time
from typing import Any

import pymongo
import pytest

import mlsm
from mlsm import Field, Model, SummaryModel, SummaryModelListException

VERSION = "0.0.0"
ADD_FIELDS = {"a": int, "b": int}


def add(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {"c": data["a"] + data["b"]}


def add_three(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {"d": sum(results[name][VERSION]["c"] for name in ("test1", "test2", "test3"))}


def nested(record_id: Any, names: list[str], a: Any = 1, b: Any = 2) -> dict[str, Any]:
    return {"id": record_id, "data": {name: {VERSION: {"a": a, "b": b}} for name in names}}


def three_models(**kwargs: Any) -> list[Model]:
    return [Model(f"test{i}", ADD_FIELDS, VERSION, add, **kwargs) for i in (1, 2, 3)]


SUMMARY_OF_THREE = [{"name": f"test{i}", "version": VERSION} for i in (1, 2, 3)]


def test_model_keeps_what_it_was_given() -> None:
    model = Model(name="test", fields=ADD_FIELDS, version=VERSION, fcn=add)
    assert (model.name, model.fields, model.version, model.fcn, model.status) == (
        "test",
        ADD_FIELDS,
        VERSION,
        add,
        "draft",
    )
    positional = Model("test", ADD_FIELDS, VERSION, add, "active")
    assert positional.status == "active"


def test_execute_puts_the_output_and_status_at_name_version() -> None:
    results = Model("test", ADD_FIELDS, VERSION, add, status="active").execute(data={"a": 1, "b": 2}, results={})
    assert results == {"test": {VERSION: {"c": 3, "_status": "active"}}}


def test_execute_keeps_other_versions_of_the_same_model() -> None:
    results = Model("test", ADD_FIELDS, "1", add).execute({"a": 1, "b": 2}, {})
    results = Model("test", ADD_FIELDS, "2", add).execute({"a": 5, "b": 5}, results)
    assert results["test"]["1"]["c"] == 3 and results["test"]["2"]["c"] == 10


def test_missing_field_is_an_error_in_the_slot_and_the_function_is_never_called() -> None:
    calls = []

    def counting(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        calls.append(data)
        return {}

    results = Model("test", ADD_FIELDS, VERSION, counting).execute(data={"a": 1}, results={})
    slot = results["test"][VERSION]
    assert slot["_error"] == "Expected 'data' input 'b' not found"
    assert slot["_errors"] == [{"field": "b", "problem": "missing (required)"}]
    assert calls == []


def test_invalid_field_names_field_type_and_value() -> None:
    slot = Model("test", ADD_FIELDS, VERSION, add).execute(data={"a": "x", "b": 2}, results={})["test"][VERSION]
    assert slot["_error"] == "invalid input: field 'a': expected int, got 'x'"


def test_exception_in_the_function_names_the_exception_and_its_message() -> None:
    def broken(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"r": data["a"] / 0}

    slot = Model("test", ADD_FIELDS, VERSION, broken).execute(data={"a": 1, "b": 2}, results={})["test"][VERSION]
    assert slot["_error"] == "division by zero"
    assert slot["_errors"][0]["type"] == "ZeroDivisionError"
    assert slot["_errors"][0]["at"].startswith("test_seed_api.py:")
    assert slot["_errors"][0]["field"] is None


def test_the_model_sees_only_its_own_fields_converted() -> None:
    seen = {}

    def spy(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        seen.update(data)
        return {}

    Model("test", {"a": int, "flag": bool}, VERSION, spy).execute({"a": "7", "flag": "yes", "other": 1}, {})
    assert seen == {"a": 7, "flag": True}


def test_model_test_is_true_for_a_sound_model_and_false_for_one_that_errors() -> None:
    assert Model("test", {"field1": int, "field2": str, "field3": float}, VERSION, lambda data, results: {}).test()

    def fragile(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"x": 10 / data["n"]}  # n = 0 is allowed by the fields

    assert not Model("test", {"n": int}, VERSION, fragile).test()
    assert Model("test", {"n": Field(int, ge=1)}, VERSION, fragile).test()


def test_summary_model_keeps_what_it_was_given_and_gets_its_own_status() -> None:
    summary = SummaryModel(name="s", models=[{"name": "test", "version": VERSION}], version=VERSION, fcn=add_three)
    assert (summary.name, summary.models, summary.version, summary.fields, summary.status) == (
        "s",
        [{"name": "test", "version": VERSION}],
        VERSION,
        {},
        "draft",
    )


def test_run_models_on_one_nested_record() -> None:
    record = mlsm.RunModels(three_models(), nested(1, ["test1", "test2", "test3"]))
    assert all(record["results"][f"test{i}"][VERSION]["c"] == 3 for i in (1, 2, 3))


def test_run_models_reads_each_models_own_data() -> None:
    record = {"id": 1, "data": {"test1": {VERSION: {"a": 1, "b": 1}}, "test2": {VERSION: {"a": 10, "b": 10}}}}
    record = mlsm.RunModels(three_models()[:2], record)
    assert record["results"]["test1"][VERSION]["c"] == 2 and record["results"]["test2"][VERSION]["c"] == 20


def test_run_summary_models_combines_results_with_its_own_status() -> None:
    record = mlsm.RunModels(three_models(), nested(1, ["test1", "test2", "test3"]))
    summary = SummaryModel("sum", SUMMARY_OF_THREE, VERSION, add_three, status="active")
    record = mlsm.RunSummaryModels([summary], record)
    assert record["results"]["sum"][VERSION] == {"d": 9, "_status": "active"}


def test_run_summary_models_without_the_needed_results_raises() -> None:
    summary = SummaryModel("sum", SUMMARY_OF_THREE, VERSION, add_three)
    with pytest.raises(SummaryModelListException, match=r"test1@0\.0\.0"):
        mlsm.RunSummaryModels([summary], {"id": 1, "data": {}, "results": {}})


def test_run_models_all_scores_every_record_and_returns_them() -> None:
    records = [nested(i, ["test1", "test2", "test3"], a=i, b=1) for i in range(3)]
    summary = SummaryModel("sum", SUMMARY_OF_THREE, VERSION, add_three)
    out = mlsm.RunModelsAll(three_models(), records, summaryModels=[summary])
    assert len(out) == 3
    assert [row["results"]["sum"][VERSION]["d"] for row in out] == [3, 6, 9]


def test_run_models_all_verbose_shows_a_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    out = mlsm.RunModelsAll(three_models(), [nested(i, ["test1"]) for i in range(3)], verbose=True)
    assert len(out) == 3
    assert "3/3" in capsys.readouterr().err


def test_missing_summary_dependencies_raise_once_before_any_record_is_scored() -> None:
    calls = []

    def counting(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        return {"c": 1}

    model = Model("test1", ADD_FIELDS, VERSION, counting)
    summary = SummaryModel(
        "sum", [{"name": "test1", "version": "0.0.1"}, {"name": "gone", "version": "2"}], VERSION, add_three
    )
    with pytest.raises(SummaryModelListException) as info:
        mlsm.RunModelsAll([model], [nested(1, ["test1"])], summaryModels=[summary])
    assert "test1@0.0.1" in str(info.value) and "gone@2" in str(info.value)
    assert calls == []


def test_summary_models_see_every_result_errors_included() -> None:
    seen = {}

    def spy(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        seen.update(results)
        return {"ok": True}

    records = [{"id": 1, "data": {"test1": {VERSION: {"a": 1}}, "test2": {VERSION: {"a": 1, "b": 1}}}}]
    summary = SummaryModel("s", SUMMARY_OF_THREE[:2], VERSION, spy)
    mlsm.RunModelsAll(three_models()[:2], records, summaryModels=[summary])
    assert "_error" in seen["test1"][VERSION] and seen["test2"][VERSION]["c"] == 2


# -- MongoDB storage, over the wire ------------------------------------------------------------------------------


@pytest.fixture
def db(mongo_url: str) -> Any:
    client: Any = pymongo.MongoClient(mongo_url.rsplit("/", 1)[0])
    yield client[mongo_url.rsplit("/", 1)[1]]
    client.close()


@pytest.mark.parametrize("id_field", ["id", "lead_id"])
def test_run_models_all_stores_the_seed_layout_with_current_and_timestamp(db: Any, id_field: str) -> None:
    models = three_models(status="active")
    models[1].status = "draft"
    summary = SummaryModel("sum", SUMMARY_OF_THREE, VERSION, add_three)
    records = [{**nested(str(i), ["test1", "test2", "test3"]), id_field: str(i)} for i in range(3)]
    before = int(time.time())
    mlsm.RunModelsAll(models, records, summaryModels=[summary], db=db, collection="results", dbIdentifier=id_field)
    stored = list(db["results"].find({}, {"_id": 0}).sort(id_field, 1))
    assert [doc[id_field] for doc in stored] == ["0", "1", "2"]
    for doc in stored:
        assert set(doc) == {id_field, "_current", "_timestamp", "results"}
        assert doc["_current"] == 0 and before <= doc["_timestamp"] <= time.time()
        assert doc["results"]["test1"][VERSION] == {"c": 3, "_status": "active"}
        assert doc["results"]["test2"][VERSION]["_status"] == "draft"
        assert doc["results"]["sum"][VERSION] == {"d": 9, "_status": "draft"}


def test_rerunning_increments_current_of_older_documents(db: Any) -> None:
    models = three_models()
    records = [{**nested("7", ["test1"]), "id": "7"}]
    for _ in range(3):
        mlsm.RunModelsAll(models[:1], [dict(r) for r in records], db=db, collection="results", dbIdentifier="id")
    currents = sorted(doc["_current"] for doc in db["results"].find({"id": {"$eq": "7"}}))
    assert currents == [0, 1, 2]
    newest = db["results"].find_one({"id": {"$eq": "7"}, "_current": 0})
    assert newest["_timestamp"] == max(doc["_timestamp"] for doc in db["results"].find({}))


def test_duplicate_ids_in_one_call_still_leave_exactly_one_current(db: Any) -> None:
    records = [{**nested("x", ["test1"], a=i), "id": "x"} for i in range(3)]
    mlsm.RunModelsAll(three_models()[:1], records, db=db, collection="results", dbIdentifier="id")
    docs = {doc["_current"]: doc for doc in db["results"].find({"id": {"$eq": "x"}})}
    assert sorted(docs) == [0, 1, 2]
    assert docs[0]["results"]["test1"][VERSION]["c"] == 4  # the last record of the call is the newest


# -- error slots: the original's `_error`, plus `_errors` and `_status` -------------------------------------------


def test_error_slots_hold_the_originals_message_and_the_models_status() -> None:
    def hello(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        raise Exception("Hi! I am an error message")

    results = Model("hi", {}, VERSION, hello, status="active").execute({}, {})
    slot = results["hi"][VERSION]
    assert slot["_error"] == "Hi! I am an error message" and slot["_status"] == "active"
    assert slot["_errors"][0]["type"] == "Exception"
    missing = Model("test", ADD_FIELDS, VERSION, add, status="active").execute({}, {})["test"][VERSION]
    assert missing["_error"] == "Expected 'data' input 'a' not found; Expected 'data' input 'b' not found"
    assert missing["_status"] == "active"


def test_a_record_without_data_for_a_model_errors_that_slot_and_the_run_goes_on() -> None:
    """The one deliberate difference from the original, which stopped the whole run with a KeyError."""
    records = [{"id": 1, "data": {"test1": {VERSION: {"a": 1, "b": 2}}}}, {"id": 2}]
    out = mlsm.RunModelsAll(three_models(status="active")[:2], records)
    assert out[0]["results"]["test1"][VERSION] == {"c": 3, "_status": "active"}
    assert out[0]["results"]["test2"][VERSION]["_error"] == (
        "Expected 'data' input 'a' not found; Expected 'data' input 'b' not found"
    )
    assert out[1]["results"]["test1"][VERSION]["_status"] == "active"


def test_stored_error_slots_carry_the_status(db: Any) -> None:
    models = [Model("test1", ADD_FIELDS, VERSION, add, status="active")]
    mlsm.RunModelsAll(models, [{"id": "e", "data": {}}], db=db, collection="results", dbIdentifier="id")
    stored = db["results"].find_one({"id": {"$eq": "e"}})
    assert stored["results"]["test1"][VERSION]["_status"] == "active"
    assert stored["results"]["test1"][VERSION]["_error"] == (
        "Expected 'data' input 'a' not found; Expected 'data' input 'b' not found"
    )
