"""Per-model time limits and call timing, as options of the one engine (both paths)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from mlsm import Engine, Field, Model, ModelDefinitionError, SummaryModel
from mlsm.fields import MISSING

FIELDS = {"a": Field(int), "b": Field(int, required=False)}


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event hanging models wait on; set when the test ends so no thread outlives it for long."""
    event = threading.Event()
    yield event
    event.set()


def add(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {"c": data["a"] + (data["b"] or 0)}


def summary(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {"errors": sorted(name for name, versions in results.items() if "_error" in versions["1"])}


def hanging_set(release: threading.Event, *, batch: bool = False, timeout: Any = 0.2, **options: Any) -> Engine:
    def hang(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        release.wait(30)
        return {"late": True}

    def hang_frame(frame: pd.DataFrame) -> pd.DataFrame:
        release.wait(30)
        return pd.DataFrame({"late": [True] * len(frame)})

    needs = [{"name": "add", "version": "1"}, {"name": "hang", "version": "1"}]
    return Engine(
        [
            Model("add", FIELDS, "1", add, status="active"),
            Model("hang", FIELDS, "1", hang_frame if batch else hang, batch=batch),
            SummaryModel("summary", needs, "1", summary),
        ],
        timeout=timeout,
        **options,
    )


@pytest.mark.parametrize("batch", [False, True], ids=["record-model", "batch-model"])
def test_a_hanging_model_is_cut_off_and_every_other_model_answers(release: threading.Event, batch: bool) -> None:
    engine = hanging_set(release, batch=batch)
    results = engine.score({"a": 1, "b": 2})
    assert results["add"]["1"] == {"c": 3, "_status": "active"}
    assert results["hang"]["1"]["_error"] == "timed out: no answer within 0.2 s (call abandoned)"
    assert results["summary"]["1"] == {"errors": ["hang"], "_status": "draft"}


def test_the_batch_path_cuts_off_a_hanging_batch_model_for_its_rows_only(release: threading.Event) -> None:
    engine = hanging_set(release, batch=True)
    rows = engine.score_columns({"a": [1, 2, "x"], "b": [MISSING, 5, 1]}, 3)
    assert [row["add"]["1"].get("c") for row in rows] == [1, 7, None]
    assert [row["hang"]["1"]["_error"][:9] for row in rows[:2]] == ["timed out", "timed out"]
    assert rows[2]["hang"]["1"]["_error"].startswith("invalid input: field 'a'")  # never reached the model


@pytest.mark.slow
def test_in_a_chunk_only_the_row_that_hangs_times_out_and_the_rest_go_on(release: threading.Event) -> None:
    threads: dict[int, int] = {}

    def hang_on_two(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        threads[data["a"]] = threading.get_ident()
        if data["a"] == 2:
            release.wait(30)
        return {"a": data["a"]}

    seen: list[tuple[str, int]] = []
    engine = Engine(
        [Model("m", FIELDS, "1", hang_on_two)], timeout=0.5, on_call=lambda key, seconds, rows: seen.append((key, rows))
    )
    rows = engine.score_columns({"a": [1, 2, 3, 4]}, 4)
    assert [row["m"]["1"].get("a") for row in rows] == [1, None, 3, 4]
    assert rows[1]["m"]["1"]["_error"] == "timed out: no answer within 0.5 s (call abandoned)"
    assert engine.stuck_calls() == {"m@1": 1}
    assert seen == [("m@1", 1)] * 4  # every call timed, the abandoned one included
    # the rows go to a worker thread together; after the abandoned call, the rest go to another one
    assert threads[1] == threads[2] != threads[3] == threads[4]
    assert threading.get_ident() not in threads.values()


@pytest.mark.slow
def test_a_model_with_too_many_stuck_calls_is_not_run_until_one_returns(release: threading.Event) -> None:
    calls = []

    def sometimes_hang(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        calls.append(data["a"])
        if data["a"] < 0:
            release.wait(30)
        return {"a": data["a"]}

    engine = Engine([Model("m", FIELDS, "1", sometimes_hang)], timeout=0.25)  # room for a busy CI machine
    for i in range(4):
        assert engine.score({"a": -1 - i})["m"]["1"]["_error"].startswith("timed out")
    assert engine.stuck_calls() == {"m@1": 4}
    refused = engine.score({"a": 7})["m"]["1"]["_error"]
    assert refused == "not run: 4 earlier calls are still running past the 0.25 s time limit"
    assert 7 not in calls
    release.set()  # the stuck calls return; their results are discarded and the model runs again
    for _ in range(200):
        if not engine.stuck_calls():
            break
        threading.Event().wait(0.01)
    assert engine.stuck_calls() == {}
    assert engine.score({"a": 7})["m"]["1"] == {"a": 7, "_status": "draft"}
    engine.close()


def test_failures_under_a_time_limit_read_as_without_one() -> None:
    def broken(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"r": data["a"] / 0}

    plain = Engine([Model("m", FIELDS, "1", broken)]).score({"a": 1})
    limited = Engine([Model("m", FIELDS, "1", broken)], timeout=5).score({"a": 1})
    assert limited == plain
    assert plain["m"]["1"]["_error"] == "division by zero"
    assert plain["m"]["1"]["_errors"][0]["at"].startswith("test_timeouts.py:")


def test_both_paths_agree_with_time_limits(release: threading.Event) -> None:
    engine = hanging_set(release, timeout={"add": 5, "summary@1": 5})  # 'hang' has no limit: never called here
    records = [{"a": i, "b": i % 3 or None} for i in range(5)] + [{"a": "bad"}]
    engine_fast = Engine(engine.models[:1], timeout=5)
    columns = {"a": [r.get("a", MISSING) for r in records], "b": [r.get("b", MISSING) for r in records]}
    assert engine_fast.score_columns(columns, len(records)) == [engine_fast.score(r) for r in records]
    assert engine.timeouts == {"add@1": 5.0, "hang@1": None, "summary@1": 5.0}


def test_on_call_reports_every_call_with_its_rows() -> None:
    seen: list[tuple[str, int]] = []

    def frame_model(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"n": frame["a"]})

    engine = Engine(
        [Model("add", FIELDS, "1", add), Model("frame", FIELDS, "1", frame_model, batch=True)],
        on_call=lambda key, seconds, rows: seen.append((key, rows)) if seconds >= 0 else None,
    )
    engine.score({"a": 1})
    engine.score_columns({"a": [1, 2, 3]}, 3)
    assert seen == [("add@1", 1), ("frame@1", 1), ("add@1", 1), ("add@1", 1), ("add@1", 1), ("frame@1", 3)]


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        ({"nope": 1}, "timeout given for unknown model 'nope'; valid keys are: *, add, add@1"),
        (0, "invalid timeout 0: expected a number of seconds greater than 0"),
        ({"add": "1"}, "invalid timeout['add'] '1': expected a number of seconds greater than 0"),
        (True, "invalid timeout True"),
    ],
)
def test_bad_time_limits_are_refused_naming_the_problem(timeout: Any, message: str) -> None:
    with pytest.raises(ModelDefinitionError, match="^" + message.replace("[", r"\[").replace("*", r"\*")):
        Engine([Model("add", FIELDS, "1", add)], timeout=timeout)


@pytest.mark.slow
def test_after_a_call_is_abandoned_no_other_call_is_made_twice(release: threading.Event) -> None:
    calls: list[tuple[str, int, int]] = []  # (model, a, thread)

    def counting(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        calls.append(("count", data["a"], threading.get_ident()))
        return {"n": data["a"]}

    def frame_model(frame: pd.DataFrame) -> pd.DataFrame:
        calls.append(("frame", len(frame), threading.get_ident()))
        return pd.DataFrame({"double": frame["a"] * 2})

    def hang_on_two(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        calls.append(("hang", data["a"], threading.get_ident()))
        if data["a"] == 2:
            release.wait(30)
        return {"seen": results["count"]["1"]["n"]}

    seen: list[str] = []
    engine = Engine(
        [
            Model("count", FIELDS, "1", counting),
            Model("frame", FIELDS, "1", frame_model, batch=True),
            Model("hang", FIELDS, "1", hang_on_two),
            SummaryModel("summary", [{"name": "hang", "version": "1"}], "1", summary),
        ],
        timeout={"hang": 0.3, "*": 5},
        on_call=lambda key, seconds, rows: seen.append(key),
    )
    rows = engine.score_columns({"a": [1, 2, 3]}, 3)
    assert [row["count"]["1"]["n"] for row in rows] == [1, 2, 3]
    assert [row["frame"]["1"]["double"] for row in rows] == [2, 4, 6]
    assert [row["hang"]["1"].get("seen") for row in rows] == [1, None, 3]
    assert rows[1]["hang"]["1"]["_error"] == "timed out: no answer within 0.3 s (call abandoned)"
    assert [row["summary"]["1"]["errors"] for row in rows] == [[], ["hang"], []]
    # each call was made once: the ones before the abandoned call were not made again after it
    made = [("count", 1), ("count", 2), ("count", 3), ("frame", 3), ("hang", 1), ("hang", 2), ("hang", 3)]
    assert [(name, a) for name, a, _ in calls] == made
    assert seen == ["count@1"] * 3 + ["frame@1"] + ["hang@1"] * 3 + ["summary@1"] * 3  # the timed-out one too
    first, second = {thread for _, a, thread in calls[:6]}, {thread for _, a, thread in calls[6:]}
    assert (
        len(first) == 1 and len(second) == 1 and first != second
    )  # one worker a run; after the abandoned call, another
    assert threading.get_ident() not in first | second
    assert engine.stuck_calls() == {"hang@1": 1}


def test_under_a_time_limit_models_are_called_on_a_reused_worker_thread_not_the_callers() -> None:
    threads: list[int] = []

    def where(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.get_ident())
        return {"a": data["a"]}

    engine = Engine([Model("m", FIELDS, "1", where), Model("n", FIELDS, "1", where)], timeout=5)
    for _ in range(3):
        assert engine.score({"a": 1})["n"]["1"] == {"a": 1, "_status": "draft"}
    assert len(set(threads)) == 1 and threading.get_ident() not in threads  # the idle worker is reused
    engine.close()


def test_scoring_under_time_limits_keeps_one_worker_and_one_watchdog_thread() -> None:
    def mlsm_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("mlsm-")]

    before = mlsm_threads()
    engine = Engine([Model("add", FIELDS, "1", add), Model("n", FIELDS, "1", add)], timeout=5)
    for i in range(50):
        assert engine.score({"a": i})["add"]["1"]["c"] == i
    engine.score_columns({"a": list(range(20))}, 20)
    after = mlsm_threads()
    assert len(after) - len(before) <= 2, after  # the reused worker and the watchdog, whatever the number of calls
    engine.close()


def test_submit_scores_on_the_engines_workers_under_limits_and_on_the_executor_without() -> None:
    from concurrent.futures import ThreadPoolExecutor

    where: list[str] = []

    def job(engine: Engine, record: dict[str, Any]) -> dict[str, Any]:
        where.append(threading.current_thread().name)
        return engine.score(record)

    limited = Engine([Model("add", FIELDS, "1", add)], timeout=5)
    plain = Engine([Model("add", FIELDS, "1", add)])
    with ThreadPoolExecutor(1, thread_name_prefix="test-executor") as executor:
        assert limited.submit(executor, job, limited, {"a": 2}).result(5) == limited.score({"a": 2})
        assert plain.submit(executor, job, plain, {"a": 2}).result(5) == plain.score({"a": 2})
    assert where[0] == "mlsm-model-call" and where[1].startswith("test-executor")
    limited.close()


def test_a_model_scoring_with_another_engine_under_limits_gets_that_engines_limits(release: threading.Event) -> None:
    inner = hanging_set(release, timeout=0.2)

    def outer_model(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        scored = inner.score(data)
        return {"inner_c": scored["add"]["1"]["c"], "inner_hang": scored["hang"]["1"]["_error"]}

    outer = Engine([Model("outer", FIELDS, "1", outer_model)], timeout=5)
    slot = outer.score({"a": 1, "b": 1})["outer"]["1"]
    late = "timed out: no answer within 0.2 s (call abandoned)"
    assert slot == {"inner_c": 2, "inner_hang": late, "_status": "draft"}
    assert inner.stuck_calls() == {"hang@1": 1} and outer.stuck_calls() == {}
