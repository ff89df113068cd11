"""Batch runs through the Python API: counts, run records, resuming after an interruption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlsm import Engine, Field, Model, RunError, SummaryModel, open_store
from mlsm.runs import RunOptions, run_batch


def score(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    if data["n"] % 7 == 0:
        raise ValueError("sevens are unlucky")
    return {"double": data["n"] * 2}


ENGINE = Engine(
    [
        Model("double", {"n": Field(int)}, "1", score, status="active"),
        SummaryModel(
            "s",
            [{"name": "double", "version": "1"}],
            "1",
            lambda data, results: {"ok": "_error" not in results["double"]["1"]},
        ),
    ]
)


def write_input(path: Path, count: int) -> Path:
    lines = ["id,n"] + [f"{i},{i}" if i % 10 else f",{i}" for i in range(1, count + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


class Stop(Exception):
    pass


def test_counts_per_model_and_the_run_record(tmp_path: Path) -> None:
    data = write_input(tmp_path / "in.csv", 50)
    with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        result = run_batch(ENGINE, store, RunOptions(str(data), "id", run_id="r1", chunk_size=8))
        counts = result.counts
        assert (counts.read, counts.scored, counts.rejected) == (50, 45, 5)
        assert counts.reject_lines == [11, 21, 31, 41, 51]
        sevens = sum(1 for i in range(1, 51) if i % 7 == 0 and i % 10)
        assert counts.models == {"double@1": [45 - sevens, sevens], "s@1": [45, 0]}
        run = store.get_run("r1")
        assert run is not None and run.status == "completed" and run.rows == 50 and run.chunks == 6
        assert run.info["models"] == ["double@1", "s@1"] and run.info["id_field"] == "id"
        assert run.ended is not None and run.ended >= run.started


def test_an_interrupted_run_resumes_exactly_after_its_last_committed_chunk(tmp_path: Path) -> None:
    data = write_input(tmp_path / "in.csv", 100)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    options = dict(run_id="r", chunk_size=9, output=str(tmp_path / "out.jsonl"), rejects=str(tmp_path / "rej.jsonl"))

    def stop_after_three(run: Any) -> None:
        if run.chunks == 3:
            raise Stop

    with open_store(url) as store, pytest.raises(Stop):
        run_batch(ENGINE, store, RunOptions(str(data), "id", **options), on_chunk=stop_after_three)  # type: ignore[arg-type]
    with open_store(url) as store:
        interrupted = store.get_run("r")
        assert interrupted is not None and interrupted.status == "interrupted" and interrupted.chunks == 3
        result = run_batch(ENGINE, store, RunOptions(str(data), "id", resume=True, **options))  # type: ignore[arg-type]
        assert result.run.status == "completed"
        assert (result.counts.read, result.counts.scored, result.counts.rejected) == (100, 90, 10)
        ids = [d["id"] for d in store.run_documents("r")]
    expected = [str(i) for i in range(1, 101) if i % 10]
    assert ids == expected  # every record exactly once, in input order
    out = [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert out == expected
    rejected = [json.loads(line)["line"] for line in (tmp_path / "rej.jsonl").read_text().splitlines()]
    assert rejected == [i + 1 for i in range(10, 101, 10)]


def test_resume_needs_an_existing_run_with_the_same_models(tmp_path: Path) -> None:
    data = write_input(tmp_path / "in.csv", 5)
    with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        with pytest.raises(RunError, match="no run 'ghost'"):
            run_batch(ENGINE, store, RunOptions(str(data), "id", run_id="ghost", resume=True))
        run_batch(ENGINE, store, RunOptions(str(data), "id", run_id="one"))
        other = Engine([Model("double", {"n": int}, "2", score)])
        with pytest.raises(RunError, match="resume with the same models"):
            run_batch(other, store, RunOptions(str(data), "id", run_id="one", resume=True))
        with pytest.raises(RunError, match="already exists"):
            run_batch(ENGINE, store, RunOptions(str(data), "id", run_id="one"))


def test_each_chunk_is_one_transaction_with_its_progress(tmp_path: Path) -> None:
    data = write_input(tmp_path / "in.csv", 30)
    seen = []
    with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:

        def check(run: Any) -> None:
            committed = store.get_run(run.id)
            seen.append((committed.rows, len(list(store.run_documents(run.id)))))

        run_batch(ENGINE, store, RunOptions(str(data), "id", run_id="t", chunk_size=10), on_chunk=check)
    # after each commit, the stored progress and the stored documents agree
    assert seen == [(11, 10), (22, 20), (30, 27)]


def test_resume_refuses_a_model_whose_code_changed(tmp_path: Path, cli: Any, write_models: Any, write_csv: Any) -> None:
    source = """
        from mlsm import Model
        m = Model("m", {"n": int}, "1", lambda data, results: {"x": data["n"] + OFFSET})
        OFFSET = 1
    """
    models = write_models(source)
    data = write_input(tmp_path / "in.csv", 30)
    args = ["run", models, data, "--id-field", "id", "--run-id", "r", "--chunk-size", "5"]
    assert cli(*args).code == 0
    write_models(source.replace("OFFSET = 1", "OFFSET = 2"))
    changed = cli(*args, "--resume")
    assert changed.code == 2
    assert "the source of model 'm@1'" in changed.err and "changed since the run started" in changed.err


def write_parts(folder: Path, sizes: list[int]) -> list[Path]:
    """CSV parts of one input: ids numbered across the parts, every tenth row without id."""
    folder.mkdir()
    paths, start = [], 1
    for index, size in enumerate(sizes):
        lines = ["id,n"] + [f"{i},{i}" if i % 10 else f",{i}" for i in range(start, start + size)]
        path = folder / f"part-{index}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
        start += size
    return paths


def test_a_directory_is_scored_as_one_input_and_resumes_across_its_files(tmp_path: Path) -> None:
    parts = write_parts(tmp_path / "in", [23, 5, 31])
    whole = write_input(tmp_path / "whole.csv", 59)  # the same rows in one file
    url = f"sqlite:///{tmp_path / 'r.db'}"
    options = dict(chunk_size=4, rejects=str(tmp_path / "rej.jsonl"), output=str(tmp_path / "out.jsonl"))

    def stop_after_seven(run: Any) -> None:  # chunk 7 ends in the second file
        if run.chunks == 7:
            raise Stop

    with open_store(url) as store:
        one = run_batch(ENGINE, store, RunOptions(str(whole), "id", run_id="one", chunk_size=4))
        with pytest.raises(Stop):
            run_batch(ENGINE, store, RunOptions(str(tmp_path / "in"), "id", run_id="dir", **options),  # type: ignore[arg-type]
                      on_chunk=stop_after_seven)  # fmt: skip
        resumed = run_batch(ENGINE, store, RunOptions(str(tmp_path / "in"), "id", run_id="dir", resume=True, **options))  # type: ignore[arg-type]  # fmt: skip
        assert resumed.run.status == "completed"
        assert resumed.run.info["files"] == [str(p.resolve()) for p in parts]
        assert (resumed.counts.read, resumed.counts.scored, resumed.counts.rejected) == (59, 54, 5)
        assert resumed.counts.models == one.counts.models
        stored = [(d["id"], d["results"]) for d in store.run_documents("dir")]
        assert stored == [(d["id"], d["results"]) for d in store.run_documents("one")]  # once each, in input order
    out = [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert out == [str(i) for i in range(1, 60) if i % 10]
    rejected = [json.loads(line) for line in (tmp_path / "rej.jsonl").read_text().splitlines()]
    # ids 10, 20 in part-0 (lines 11, 21), 30..50 in part-2 (which starts at id 29: lines 3, 13, 23)
    assert [(Path(r["file"]).name, r["line"]) for r in rejected] == [
        ("part-0.csv", 11), ("part-0.csv", 21), ("part-2.csv", 3), ("part-2.csv", 13), ("part-2.csv", 23),
    ]  # fmt: skip
    assert resumed.counts.reject_lines == [f"{r['file']}:{r['line']}" for r in rejected]


def test_resume_refuses_an_input_whose_files_changed(tmp_path: Path) -> None:
    write_parts(tmp_path / "in", [5, 5])
    with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        with pytest.raises(Stop):
            run_batch(ENGINE, store, RunOptions(str(tmp_path / "in"), "id", run_id="r", chunk_size=2),
                      on_chunk=lambda run: (_ for _ in ()).throw(Stop()))  # fmt: skip
        (tmp_path / "in" / "part-00.csv").write_text("id,n\n100,1\n")  # sorts before the others: rows would shift
        with pytest.raises(RunError, match="resume with the same files"):
            run_batch(ENGINE, store, RunOptions(str(tmp_path / "in"), "id", run_id="r", chunk_size=2, resume=True))


def test_a_run_refuses_to_write_over_its_input_and_registers_nothing(tmp_path: Path) -> None:
    data = write_input(tmp_path / "in.csv", 5)
    before = data.read_bytes()
    with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        with pytest.raises(RunError, match="is the input file"):
            run_batch(ENGINE, store, RunOptions(str(data), "id", run_id="r", output=str(data)))
        with pytest.raises(RunError, match="--output and --rejects name the same file"):
            run_batch(ENGINE, store, RunOptions(str(data), "id", run_id="r", output="o.jsonl", rejects="o.jsonl"))
        assert store.list_runs() == []
    assert data.read_bytes() == before


def test_rejects_files_are_valid_json_whatever_the_rows_held(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def no_constants(name: str) -> None:
        raise AssertionError(f"bare {name} in a rejects line")

    parquet = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["1", None], "n": [float("nan"), float("inf")], "b": [b"\x00", b"\xff"]}), parquet)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"id": NaN, "n": -Infinity}\n{"n": "x\\udc00"}\n')
    with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        for data in (parquet, jsonl):
            rejects = tmp_path / f"{data.suffix}.rejects.jsonl"
            run_batch(ENGINE, store, RunOptions(str(data), "id", rejects=str(rejects)))
            lines = rejects.read_bytes().decode("utf-8").splitlines()  # valid UTF-8 too
            assert lines and all(json.loads(line, parse_constant=no_constants) for line in lines)
    assert json.loads(lines[0])["record"] == {"id": None, "n": None}
