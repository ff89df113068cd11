"""One conformance suite for every store backend: document semantics, history, export, runs."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mlsm import RunError, RunRecord, Store, StoreError, StoreNotFound, open_store
from mlsm.documents import Documents, make_document
from mlsm.evaluation.outcomes import OutcomeRules
from mlsm.stores.outcomes import Outcome

from .conftest import Outage


def batch(run: str | None, *pairs: tuple[str, float], id_field: str = "lead") -> Documents:
    docs = [
        make_document(
            id_field, id_value, {"m": {"1": {"score": score, "_status": "active"}}}, run=run, timestamp=int(time.time())
        )
        for id_value, score in pairs
    ]
    return Documents(id_field, [p[0] for p in pairs], docs, run=run)


def scores(documents: list[dict[str, Any]]) -> list[float]:
    return [d["results"]["m"]["1"]["score"] for d in documents]


def test_a_written_document_is_current_with_the_seed_layout_plus_run(store: Store) -> None:
    store.write(batch("r1", ("a", 0.5)))
    document = store.current("a")
    assert document is not None
    assert list(document) == ["lead", "_current", "_timestamp", "_run", "results"]
    assert document["lead"] == "a" and document["_current"] == 0 and document["_run"] == "r1"
    assert abs(document["_timestamp"] - time.time()) < 60
    assert document["results"] == {"m": {"1": {"score": 0.5, "_status": "active"}}}


def test_history_is_newest_first_and_current_counts_up(store: Store) -> None:
    for i in range(3):
        store.write(batch(f"r{i}", ("a", i / 10), ("b", 1.0)))
    history = store.history("a")
    assert [d["_current"] for d in history] == [0, 1, 2]
    assert scores(history) == [0.2, 0.1, 0.0]
    assert [d["_run"] for d in history] == ["r2", "r1", "r0"]
    assert scores([store.current("a")]) == [0.2]  # type: ignore[list-item]


def test_an_id_repeated_in_one_batch_has_exactly_one_current(store: Store) -> None:
    store.write(batch("r", ("a", 0.1), ("b", 0.5), ("a", 0.2), ("a", 0.3)))
    history = store.history("a")
    assert [d["_current"] for d in history] == [0, 1, 2]
    assert scores(history) == [0.3, 0.2, 0.1]
    assert sum(1 for d in store.current_documents() if d["lead"] == "a") == 1


def test_unknown_ids_have_no_documents(store: Store) -> None:
    assert store.current("nobody") is None
    assert store.history("nobody") == []


def test_ids_that_look_numeric_are_kept_as_text(store: Store) -> None:
    store.write(batch("r", ("2", 0.2), ("02", 0.02), ("id", 0.9)))
    assert scores([store.current("2"), store.current("02"), store.current("id")]) == [0.2, 0.02, 0.9]  # type: ignore[list-item]


def other_model(run: str, *ids: str) -> Documents:
    docs = [
        make_document("lead", i, {"other": {"2": {"x": 1, "_status": "draft"}}}, run=run, timestamp=int(time.time()))
        for i in ids
    ]
    return Documents("lead", list(ids), docs, run=run)


def test_export_gives_each_ids_current_document_in_id_order(store: Store) -> None:
    store.write(batch("r1", ("b", 0.1), ("a", 0.2)))
    store.write(batch("r2", ("a", 0.3)))
    store.write(other_model("r3", "c"))
    current = list(store.current_documents())
    assert [d["lead"] for d in current] == ["a", "b", "c"]
    assert all(d["_current"] == 0 for d in current)
    assert scores(current[:2]) == [0.3, 0.1]


def test_current_results_of_one_model_come_from_each_ids_newest_document_holding_it(store: Store) -> None:
    store.write(batch("r1", ("a", 0.1), ("b", 0.2)))
    store.write(batch("r2", ("a", 0.3)))
    store.write(other_model("r3", "c", "a"))  # a's newest document has no m@1 result
    for_m = list(store.current_documents(model="m@1"))
    assert [(d["lead"], d["_current"], d["_run"]) for d in for_m] == [("a", 1, "r2"), ("b", 0, "r1")]
    assert scores(for_m) == [0.3, 0.2]
    assert [d["lead"] for d in store.current_documents(model="other@2")] == ["a", "c"]
    assert list(store.current_documents(model="m@9")) == []


def test_runs_are_registered_and_progress_is_committed_with_each_chunk(store: Store) -> None:
    run = RunRecord.new("run-1", {"input": "x.csv", "id_field": "lead"})
    store.start_run(run)
    assert store.get_run("run-1") is not None and store.get_run("run-1").status == "running"  # type: ignore[union-attr]
    run.rows, run.chunks, run.counts = 2, 1, {"read": 2}
    store.write(batch("run-1", ("a", 0.1), ("b", 0.2)), run)
    saved = store.get_run("run-1")
    assert saved is not None and (saved.rows, saved.chunks, saved.counts) == (2, 1, {"read": 2})
    assert saved.info == {"input": "x.csv", "id_field": "lead"}
    run.status, run.ended = "completed", time.time()
    store.save_run(run)
    assert store.get_run("run-1").status == "completed"  # type: ignore[union-attr]
    assert [d["lead"] for d in store.run_documents("run-1")] == ["a", "b"]


def test_a_run_id_can_be_started_only_once(store: Store) -> None:
    store.start_run(RunRecord.new("same", {}))
    with pytest.raises(RunError, match="run 'same' already exists"):
        store.start_run(RunRecord.new("same", {}))


def test_runs_are_listed_oldest_first(store: Store) -> None:
    # registered in another order than they started, with ids that sort in a third order
    now = time.time()
    for name, started in (("mike", now + 2), ("zulu", now), ("alpha", now + 1)):
        store.start_run(RunRecord(name, started=started))
    assert [r.id for r in store.list_runs()] == ["zulu", "alpha", "mike"]
    assert store.get_run("missing") is None


def test_documents_survive_reopening_the_store(store_url: str) -> None:
    with open_store(store_url) as first:
        first.write(batch("r", ("a", 0.4)))
    with open_store(store_url) as second:
        assert scores([second.current("a")]) == [0.4]  # type: ignore[list-item]


def test_a_store_keeps_one_id_field(store: Store) -> None:
    from mlsm import StoreConfigError

    store.write(batch("r", ("a", 0.1)))
    with pytest.raises(StoreConfigError, match="keyed by 'lead', not 'contact'"):
        store.write(batch("r", ("b", 0.1), id_field="contact"))
    assert store.current("b") is None


def test_ids_are_ordered_by_code_point_on_every_backend(store: Store) -> None:
    ids = ["b", "B", "ä", "a", "10", "9", "Zürich", "zebra"]
    store.write(batch("r", *[(i, 0.5) for i in ids]))
    assert [d["lead"] for d in store.current_documents()] == sorted(ids)
    assert [d["lead"] for d in store.current_documents(model="m@1")] == sorted(ids)


def test_a_chunk_with_its_mark_is_written_once_whatever_the_order(store: Store) -> None:
    from mlsm import RunError
    from mlsm.stores.base import ChunkMark

    second = ChunkMark("dist", "in.csv", 4, 6, {"scored": 2})
    first = ChunkMark("dist", "in.csv", 1, 3, {"scored": 3})
    assert store.write_chunk(batch("dist", ("d", 0.4), ("e", 0.5)), second) is True
    assert store.write_chunk(batch("dist", ("a", 0.1), ("b", 0.2), ("c", 0.3)), first) is True
    assert store.write_chunk(batch("dist", ("d", 0.9), ("e", 0.9)), second) is False  # a retry of a done chunk
    assert sorted(d["lead"] for d in store.run_documents("dist")) == ["a", "b", "c", "d", "e"]
    assert scores([store.current("d")]) == [0.4]  # type: ignore[list-item]
    assert [(m.source, m.first, m.last, m.counts) for m in store.chunk_marks("dist")] == [
        ("in.csv", 1, 3, {"scored": 3}),
        ("in.csv", 4, 6, {"scored": 2}),
    ]
    other_file = ChunkMark("dist", "more.csv", 1, 3, {})
    assert store.write_chunk(batch("dist", ("f", 0.6)), other_file) is True
    with pytest.raises(RunError, match="overlap rows 1-3 committed before: resume with the same --chunk-size"):
        store.write_chunk(batch("dist", ("g", 0.7)), ChunkMark("dist", "in.csv", 2, 5, {}))
    assert store.current("g") is None
    assert store.chunk_marks("other run") == []


def test_an_empty_store_has_no_id_field_until_its_first_write(store: Store) -> None:
    assert store.id_field is None
    assert store.current("a") is None and store.history("a") == [] and list(store.current_documents()) == []
    store.write(batch("r", ("a", 0.1)))
    assert store.id_field == "lead"


# -- opened for reading ----------------------------------------------------------------------------------------


def test_a_store_opened_for_reading_must_exist_and_is_not_created(store_url: str) -> None:
    for _ in range(2):  # the first attempt created nothing the second could find
        with pytest.raises(StoreNotFound, match=r"^no .*store"):
            open_store(store_url, mode="read")
    open_store(store_url).close()  # opened for writing once: it exists, empty
    with open_store(store_url, mode="read") as reader:
        assert reader.id_field is None and list(reader.current_documents()) == [] and reader.list_runs() == []


def test_a_store_opened_for_reading_reads_everything_and_refuses_writes(store_url: str) -> None:
    from mlsm.stores.base import ChunkMark

    with open_store(store_url) as writer:
        run = RunRecord("r1", started=time.time())
        writer.start_run(run)
        writer.write(batch("r1", ("a", 0.1), ("b", 0.2)), run)
        writer.write(batch("r2", ("a", 0.3)))
    with open_store(store_url, mode="read") as reader:
        assert reader.id_field == "lead"
        assert scores(reader.history("a")) == [0.3, 0.1] and scores([reader.current("b")]) == [0.2]  # type: ignore[list-item]
        assert [d["lead"] for d in reader.current_documents()] == ["a", "b"]
        assert [d["lead"] for d in reader.current_documents(model="m@1")] == ["a", "b"]
        assert [d["lead"] for d in reader.run_documents("r1")] == ["a", "b"]
        assert [r.id for r in reader.list_runs()] == ["r1"] and reader.get_run("r1") is not None
        writes = [
            lambda: reader.write(batch("r3", ("c", 0.5))),
            lambda: reader.write_chunk(batch("r3", ("c", 0.5)), ChunkMark("r3", "in.csv", 1, 1)),
            lambda: reader.start_run(RunRecord("r3", started=time.time())),
            lambda: reader.save_run(RunRecord("r1", started=0.0, status="failed")),
        ]
        for write in writes:
            with pytest.raises(StoreError, match="opened for reading"):
                write()
    with open_store(store_url) as writer:
        assert writer.current("c") is None and writer.get_run("r3") is None
        assert writer.get_run("r1").status == "running"  # type: ignore[union-attr]


# -- a server that goes away -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_server_gone_mid_read_is_store_unavailable_never_a_driver_error(outage: Outage) -> None:
    from mlsm import StoreUnavailable

    with open_store(outage.url) as store:
        store.start_run(RunRecord("r", started=time.time()))
        store.write(batch("r", *[(f"{i:05d}", 0.5) for i in range(5000)]))
        documents = store.current_documents()
        assert next(documents)["lead"] == "00000"
        outage.cut()
        with pytest.raises(StoreUnavailable):
            for _ in documents:  # more than the driver had fetched before the cut
                pass
        with pytest.raises(StoreUnavailable):
            next(store.current_documents(model="m@1"))
        with pytest.raises(StoreUnavailable):
            next(store.run_documents("r"))
        # what else a store does may still be answered from what it holds, but fails only as a StoreError
        for action in (
            lambda: store.current("00001"),
            lambda: store.history("00001"),
            lambda: store.list_runs(),
            lambda: store.get_run("r"),
            lambda: store.write(batch("r", ("late", 0.1))),
            lambda: store.save_run(RunRecord("r", started=0.0, status="failed")),
        ):
            try:
                action()
            except StoreError:
                pass


# -- outcomes ----------------------------------------------------------------------------------------------------


def outcome(id_value: str, value: int, at: float, loaded_at: float = 1000.0, label: str | None = None) -> Outcome:
    return Outcome(id_value, value, at, loaded_at, "test.csv", label)


def test_a_later_outcome_of_an_id_replaces_it_and_the_old_one_stays_as_history(store: Store) -> None:
    store.write_outcomes([outcome("a", 0, 100.5, label="no"), outcome("b", 1, 200.0)])
    store.write_outcomes([outcome("a", 1, 150.25, loaded_at=2000.0, label="yes")])
    assert [(o.id, o.outcome, o.at) for o in store.outcomes()] == [("a", 1, 150.25), ("b", 1, 200.0)]
    history = store.outcome_history("a")
    assert [(o.outcome, o.loaded_at, o.label) for o in history] == [(1, 2000.0, "yes"), (0, 1000.0, "no")]
    assert history[0].source == "test.csv"
    assert store.outcome_history("nobody") == []


def test_the_last_outcome_of_an_id_in_one_chunk_wins(store: Store) -> None:
    store.write_outcomes([outcome("a", 0, 100), outcome("b", 0, 100), outcome("a", 1, 300)])
    assert [(o.id, o.outcome, o.at) for o in store.outcomes()] == [("a", 1, 300), ("b", 0, 100)]
    assert len(store.outcome_history("a")) == 2


def test_outcomes_are_selected_by_decision_time_since_inclusive_until_exclusive(store: Store) -> None:
    store.write_outcomes([outcome(i, 1, at) for i, at in (("a", 100), ("b", 200), ("c", 300), ("d", 400))])
    assert [o.id for o in store.outcomes(since=200)] == ["b", "c", "d"]
    assert [o.id for o in store.outcomes(until=300)] == ["a", "b"]
    assert [o.id for o in store.outcomes(since=200, until=400)] == ["b", "c"]
    assert [o.id for o, _ in store.outcome_documents(since=200, until=400)] == ["b", "c"]


def test_each_outcome_comes_with_its_ids_documents_oldest_first_in_id_order(store: Store) -> None:
    for i in range(3):
        store.write(batch(f"r{i}", ("b", i / 10), ("z", 0.9), ("a", 0.5 + i / 10)))
    store.write_outcomes([outcome("b", 1, 100), outcome("c", 0, 100), outcome("a", 0, 100), outcome("é", 1, 100)])
    joined = [(o.id, [(d["lead"], d["_run"], d["results"]["m"]["1"]["score"]) for d in docs])
              for o, docs in store.outcome_documents()]  # fmt: skip
    assert joined == [
        ("a", [("a", "r0", 0.5), ("a", "r1", 0.6), ("a", "r2", 0.7)]),
        ("b", [("b", "r0", 0.0), ("b", "r1", 0.1), ("b", "r2", 0.2)]),
        ("c", []),
        ("é", []),
    ]


def test_the_flat_join_rows_hold_each_documents_timestamp_and_results_in_id_then_time_order(store: Store) -> None:
    for i in range(2):
        store.write(batch(f"r{i}", ("b", i / 10), ("z", 0.9), ("a", 0.5 + i / 10)))
    store.write_outcomes([outcome("b", 1, 100.5), outcome("c", 0, 100), outcome("a", 0, 100), outcome("é", 1, 50)])
    expected = {
        (o.id, o.outcome, o.at): [(d["_timestamp"], d["results"]) for d in docs] or [(None, None)]
        for o, docs in store.outcome_documents()
    }
    rows = list(store.outcome_results())
    assert [(i, v, at, stamp, results) for (i, v, at), pairs in expected.items() for stamp, results in pairs] == rows
    assert [row[0] for row in rows] == ["a", "a", "b", "b", "c", "é"]
    assert rows[2][3] == store.history("b")[-1]["_timestamp"] and rows[3][4] == {
        "m": {"1": {"score": 0.1, "_status": "active"}}
    }
    assert [row[0] for row in store.outcome_results(since=100, until=101)] == ["a", "a", "b", "b", "c"]


def test_the_point_in_time_join_judges_alike_on_every_backend(store: Store) -> None:
    from mlsm.evaluation.join import join_outcomes

    def write(stamp: int, **slots: dict[str, Any]) -> None:
        docs = [make_document("lead", i, results, run=f"r{stamp}", timestamp=stamp) for i, results in slots.items()]
        store.write(Documents("lead", list(slots), docs, run=f"r{stamp}"))

    write(100, a={"m": {"1": {"score": 0.1}}}, b={"m": {"1": {"_error": "boom"}}}, c={"m": {"1": {"score": True}}})
    write(200, a={"m": {"1": {"score": 3}}, "n": {"2": {"score": 0.5}}}, d={"n": {"2": {"p": 0.5}}})
    write(300, a={"n": {"2": {"score": 0.7}}}, b={"m": {"1": {"score": 0.8}}}, c={"m": {"1": {"score": 0.9}}})
    store.write_outcomes([outcome(i, n % 2, 250) for n, i in enumerate("abcde")])
    joined = join_outcomes(store)
    m, n = joined.models["m@1"], joined.models["n@2"]
    assert (m.ids.tolist(), m.scores.tolist(), m.late, m.not_scored) == (["a"], [3.0], 2, 2)
    assert (n.ids.tolist(), n.scores.tolist(), n.late, n.not_scored) == (["a"], [0.5], 0, 4)
    first, latest = join_outcomes(store, as_of="first"), join_outcomes(store, as_of="latest")
    assert first.models["m@1"].scores.tolist() == [0.1] and first.models["m@1"].late == 0
    assert dict(zip(latest.models["m@1"].ids.tolist(), latest.models["m@1"].scores.tolist())) == {
        "a": 3.0, "b": 0.8, "c": 0.9,
    }  # fmt: skip
    assert join_outcomes(store, since=300).outcomes == 0


def test_the_join_stream_skips_what_a_reader_leaves_unread(store: Store) -> None:
    for i in range(3):
        store.write(batch(f"r{i}", ("a", i / 10), ("b", 0.5)))
    store.write_outcomes([outcome("a", 1, 100), outcome("b", 0, 100)])
    stream = store.outcome_documents()
    first, documents = next(stream)
    assert first.id == "a" and next(documents)["_run"] == "r0"
    second, documents = next(stream)
    assert second.id == "b" and [d["lead"] for d in documents] == ["b", "b", "b"]
    assert next(stream, None) is None


def test_an_outcome_id_with_stray_whitespace_joins_its_documents(store: Store) -> None:
    store.write(batch("r", ("42", 0.4), ("7", 0.7)))
    rules = OutcomeRules(loaded_at=1000.0)
    store.write_outcomes([rules.outcome(" 42\n", "yes"), rules.outcome(7.0, "0")])
    joined = [(o.id, o.outcome, [d["lead"] for d in docs]) for o, docs in store.outcome_documents()]
    assert joined == [("42", 1, ["42"]), ("7", 0, ["7"])]


def test_outcomes_read_from_a_store_opened_for_reading_which_refuses_to_write_them(store_url: str) -> None:
    with open_store(store_url) as writer:
        writer.write(batch("r", ("a", 0.5)))
    with open_store(store_url, mode="read") as reader:
        assert list(reader.outcomes()) == [] and list(reader.outcome_documents()) == []
        assert reader.outcome_history("a") == []
    with open_store(store_url) as writer:
        writer.write_outcomes([outcome("a", 1, 100)])
    with open_store(store_url, mode="read") as reader:
        assert [o.id for o in reader.outcomes()] == ["a"]
        assert [(o.id, len(list(docs))) for o, docs in reader.outcome_documents()] == [("a", 1)]
        with pytest.raises(StoreError, match="opened for reading"):
            reader.write_outcomes([outcome("b", 1, 100)])
        assert [o.id for o in reader.outcomes()] == ["a"]
