"""Runs that are killed with SIGKILL at any moment and resumed: exactly one result per record, one current per id.

Real ``mlsm run`` processes, real signals, every backend.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from mlsm import open_store

from ..conftest import run_mlsm

MODELS = """
    import time
    import pandas as pd
    from mlsm import Field, Model

    def slow(frame):
        time.sleep(0.03)  # a chunk takes a while, so kills land in the middle of runs
        return pd.DataFrame({"double": frame["n"] * 2})

    MODELS = [Model("double", {"n": Field(int)}, "1", slow, batch=True, status="active")]
"""

ROWS = 1500
CHUNK = 25


def write_input(path: Path) -> tuple[list[str], list[int]]:
    """Rows 1..ROWS; every 97th has no id and every 151st has an extra field. Returns (ids, reject lines)."""
    lines, ids, rejected = ["id,n"], [], []
    for i in range(1, ROWS + 1):
        line_number = i + 1
        if i % 97 == 0:
            lines.append(f",{i}")
            rejected.append(line_number)
        elif i % 151 == 0:
            lines.append(f"{i},{i},extra")
            rejected.append(line_number)
        else:
            lines.append(f"{i},{i}")
            ids.append(str(i))
    path.write_text("\n".join(lines) + "\n")
    return ids, rejected


def store_url_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    return str(request.getfixturevalue(f"{backend}_url"))


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLSM_STORE"}
    return subprocess.Popen(
        [sys.executable, "-m", "mlsm", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def committed_chunks(url: str, run_id: str) -> int:
    try:
        with open_store(url) as store:
            run = store.get_run(run_id)
            return run.chunks if run else 0
    except Exception:
        return 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "mongo"])
def test_sigkill_at_random_moments_then_resume_gives_exactly_one_result_per_record(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, write_models: Callable[..., Path]
) -> None:
    url = store_url_for(backend, request, tmp_path)
    models = write_models(MODELS)
    data = tmp_path / "input.csv"
    ids, rejected = write_input(data)
    common = [str(models), str(data), "--id-field", "id", "--store", url, "--chunk-size", str(CHUNK)]
    # an earlier run gives every id a history, so _current numbering is exercised too
    assert run_mlsm("run", *common, "--run-id", "before", cwd=tmp_path).code == 0

    args = [*common, "--run-id", "killed", "--output", "out.jsonl", "--rejects", "rejects.jsonl"]
    rng = random.Random(f"{backend}-resume")
    kills = attempts = 0
    # up to 3 kills, each some chunks after the last; a slow machine may need more starts, a fast one fewer kills
    while kills < 3 and attempts < 8:
        process = start(["run", *args] + (["--resume"] if attempts else []), tmp_path)
        attempts += 1
        target = committed_chunks(url, "killed") + rng.randint(1, 6)
        deadline = time.monotonic() + 120
        while process.poll() is None and committed_chunks(url, "killed") < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))  # somewhere inside a later chunk's work
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(30)
        if process.returncode == 0:
            break  # it finished before the kill: what was killed before is what the resume checks
    final = run_mlsm("run", *args, "--resume", cwd=tmp_path)
    assert final.code == 0, final.err
    assert kills >= 1, "the run finished before it could be killed even once: make chunks slower"

    with open_store(url) as store:
        run = store.get_run("killed")
        assert run is not None and run.status == "completed"
        assert (run.counts["read"], run.counts["scored"], run.counts["rejected"]) == (ROWS, len(ids), len(rejected))
        assert run.counts["models"] == {"double@1": {"ok": len(ids), "errors": 0}}
        documents = list(store.run_documents("killed"))
        assert [d["id"] for d in documents] == ids  # every record once, in input order
        assert all(d["results"]["double"]["1"]["double"] == 2 * int(d["id"]) for d in documents)
        current = [d for d in store.current_documents()]
        assert sorted(d["id"] for d in current) == sorted(ids)
        assert {d["_run"] for d in current} == {"killed"}
        for id_value in rng.sample(ids, 25):
            assert [(d["_run"], d["_current"]) for d in store.history(id_value)] == [("killed", 0), ("before", 1)]
    assert [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == ids
    assert [json.loads(line)["line"] for line in (tmp_path / "rejects.jsonl").read_text().splitlines()] == rejected


MONGO_CRASH = """
import os, signal, sys, time
from mlsm import open_store
from mlsm.documents import Documents, make_document
from mlsm.stores.base import RunRecord

url, stage = sys.argv[1], sys.argv[2]
store = open_store(url)
run = store.get_run("crash")
docs = [make_document("id", i, {"m": {"1": {"x": 2, "_status": "active"}}}, run="crash", timestamp=int(time.time()))
        for i in ("a", "b", "b")]
run.rows, run.chunks = 3, 1
original = store._write_documents
results = store._results

def crash_after_bump(id_field, documents):
    store._results.insert_many = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    original(id_field, documents)

def crash_after_insert(id_field, documents):
    original(id_field, documents)
    os.kill(os.getpid(), signal.SIGKILL)

def crash_after_commit(id_field, documents):
    original(id_field, documents)
    store._intents.delete_one = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)

stages = {"bump": crash_after_bump, "insert": crash_after_insert, "commit": crash_after_commit}
store._write_documents = stages[stage.removeprefix("runless-")]
batch = Documents("id", ["a", "b", "b"], docs, run="crash")
store.write(batch) if stage.startswith("runless-") else store.write(batch, run)
"""


@pytest.mark.parametrize("stage", ["bump", "insert", "commit", "runless-bump", "runless-commit"])
def test_mongo_recovers_a_chunk_killed_between_its_bulk_operations(mongo_url: str, tmp_path: Path, stage: str) -> None:
    """The windows a standalone MongoDB leaves open, hit exactly: the process dies by SIGKILL there."""
    from mlsm.documents import Documents, make_document
    from mlsm.stores.base import RunRecord

    with open_store(mongo_url) as store:
        old = [
            make_document("id", i, {"m": {"1": {"x": 1, "_status": "active"}}}, run="old", timestamp=0) for i in "ab"
        ]
        store.write(Documents("id", ["a", "b"], old, run="old"))
        store.start_run(RunRecord.new("crash", {"id_field": "id"}))
    script = tmp_path / "crash.py"
    script.write_text(MONGO_CRASH)
    done = subprocess.run([sys.executable, str(script), mongo_url, stage], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    with open_store(mongo_url) as store:
        run = store.get_run("crash")
        assert run is not None
        if stage.startswith("runless-"):  # a writer with no run (a service worker, RunModelsAll): settled on open
            assert store.settle_stale(older_than=-1) == 1
            expected = [("crash", 0), ("old", 1)] if stage == "runless-commit" else [("old", 0)]
            assert [(d["_run"], d["_current"]) for d in store.history("a")] == expected
            return
        store.recover(run)
        if stage == "commit":  # killed after the progress was saved: the chunk is in, nothing is undone
            assert (run.rows, run.chunks) == (3, 1)
            assert [(d["_run"], d["_current"]) for d in store.history("a")] == [("crash", 0), ("old", 1)]
            assert [d["_current"] for d in store.history("b")] == [0, 1, 2]
            assert len(list(store.run_documents("crash"))) == 3
            return
        assert (run.rows, run.chunks) == (0, 0)  # the chunk never committed
        for id_value in "ab":
            assert [(d["_run"], d["_current"]) for d in store.history(id_value)] == [("old", 0)]
        assert list(store.run_documents("crash")) == []
        assert Counter(d["id"] for d in store.current_documents()) == {"a": 1, "b": 1}
