"""Scaling out: ``--workers N`` processes on this machine, and ``--executor ray`` on a local Ray cluster.

Both must give exactly the results of a single-process run, keep exactly-once semantics when something dies, and
report setup problems as one line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlsm import open_store
from mlsm.readers import open_input

from ..conftest import CliResult, run_mlsm
from ..servers import kill_tree, process_tree, processes_marked, wait_for_exit
from .test_resume import committed_chunks, start

MODELS = """
    import os
    import pandas as pd
    from mlsm import Field, Model, SummaryModel

    def rules(data, results):
        if data["b"] == 13:
            raise ValueError("thirteen")
        return {"score": round((data["a"] % 97) / 97, 4)}

    def batch(frame):
        return pd.DataFrame({"score": (frame["a"] * 3 % 101) / 101, "flag": frame["b"] > 50})

    def winner(data, results):
        ok = [s["score"] for v in results.values() for s in v.values() if "score" in s]
        return {"best": max(ok) if ok else None}

    MODELS = [
        Model("rules", {"a": int, "b": Field(int, ge=0)}, "1", rules, status="active"),
        Model("batch", {"a": int, "b": int}, "1", batch, batch=True, status="active"),
        SummaryModel("winner", [{"name": "rules", "version": "1"}, {"name": "batch", "version": "1"}], "1", winner),
    ]
"""


def write_inputs(folder: Path, files: int = 2, rows: int = 700) -> list[Path]:
    """CSV files with bad values (b=-1 breaks a field rule), bad lines and rows without id."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(files):
        lines = ["id,a,b"]
        for i in range(rows):
            n = f * rows + i
            if i % 101 == 50:
                lines.append(f"{n},{n},{n},extra")
            elif i % 89 == 7:
                lines.append(f",{n},{i % 100}")
            else:
                lines.append(f"id{n},{n},{-1 if i % 53 == 0 else i % 100}")
        path = folder / f"part-{f}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def results_of(url: str) -> dict[str, Any]:
    """Each id's current results (what a reader sees), without run ids and timestamps."""
    with open_store(url) as store:
        return {d["id"]: d["results"] for d in store.current_documents()}


def counts_of(url: str, run_id: str) -> dict[str, Any]:
    with open_store(url) as store:
        run = store.get_run(run_id)
        assert run is not None and run.status == "completed"
        return run.counts


# -- local processes -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_give_exactly_the_results_files_and_counts_of_one_process(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    models = write_models(MODELS)
    write_inputs(tmp_path / "in", files=2, rows=750)  # a directory: its files read one after the other
    for workers in ("1", "2"):
        args = ["run", models, "in", "--id-field", "id", "--store", f"sqlite:///w{workers}.db", "--run-id", "r"]
        args += ["--chunk-size", "100", "--workers", workers, "--output", f"out{workers}.jsonl"]
        result = cli(*args, "--rejects", f"rejects{workers}.jsonl")
        assert result.code == 0, result.err
    assert results_of("sqlite:///w1.db") == results_of("sqlite:///w2.db")
    assert counts_of("sqlite:///w1.db", "r") == counts_of("sqlite:///w2.db", "r")
    assert (tmp_path / "rejects1.jsonl").read_text() == (tmp_path / "rejects2.jsonl").read_text()

    def outputs(name: str) -> list[tuple[str, Any]]:
        return [(d["id"], d["results"]) for d in map(json.loads, (tmp_path / name).read_text().splitlines())]

    assert outputs("out1.jsonl") == outputs("out2.jsonl")  # same documents, in input order


def test_workers_resume_exactly_after_a_sigkill(write_models: Callable[..., Path], tmp_path: Path) -> None:
    slow = MODELS.replace(
        "def rules(data, results):", "def rules(data, results):\n        import time; time.sleep(0.0005)"
    )
    models = write_models(slow)
    (data,) = write_inputs(tmp_path / "in", files=1, rows=3000)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    args = ["run", str(models), str(data), "--id-field", "id", "--store", url, "--run-id", "k", "--chunk-size", "50"]
    args += ["--workers", "2"]
    process = start(args, tmp_path)
    deadline = time.monotonic() + 60
    while committed_chunks(url, "k") < 8:
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.stderr else ""
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    resumed = run_mlsm(*args, "--resume", cwd=tmp_path)
    assert resumed.code == 0, resumed.err
    rows = [line.split(",") for line in data.read_text().splitlines()[1:]]
    expected = [row[0] for row in rows if row[0] and len(row) == 3]
    with open_store(url) as store:
        assert [d["id"] for d in store.run_documents("k")] == expected


@pytest.mark.slow
def test_no_worker_outlives_a_killed_run(write_models: Callable[..., Path], tmp_path: Path) -> None:
    slow = MODELS.replace(
        "def rules(data, results):", "def rules(data, results):\n        import time; time.sleep(0.001)"
    )
    (data,) = write_inputs(tmp_path / "in", files=1, rows=20000)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    args = ["run", str(write_models(slow)), str(data), "--id-field", "id", "--store", url, "--run-id", "k"]
    process = start([*args, "--chunk-size", "100", "--workers", "2"], tmp_path)
    tree: dict[int, tuple[str, str]] = {}
    try:
        deadline = time.monotonic() + 120
        while committed_chunks(url, "k") < 2:  # mid-run: both workers busy, most of the input still to score
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.05)
        tree = process_tree(process.pid)
        workers = [pid for pid, (_, command) in tree.items() if "multiprocessing.spawn" in command]
        assert len(workers) == 2, tree
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        assert wait_for_exit(tree, 5) == {}  # the workers, and the resource tracker they kept alive
    finally:
        process.kill()
        kill_tree(tree)
    assert committed_chunks(url, "k") < 200  # it was killed mid-run


def test_a_worker_that_dies_stops_the_run_resumably(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    crash = MODELS.replace(
        'raise ValueError("thirteen")',
        'os._exit(9) if os.path.exists("crash") else None\n            raise ValueError("thirteen")',
    )
    models = write_models(crash)
    (data,) = write_inputs(tmp_path / "in", files=1, rows=600)
    (tmp_path / "crash").write_text("")
    args = ["run", models, data, "--id-field", "id", "--store", "sqlite:///r.db", "--run-id", "c", "--workers", "2"]
    stopped = cli(*args, "--chunk-size", "50")
    assert stopped.code == 3
    (line,) = stopped.err.strip().splitlines()[-1:]
    assert "a worker process died" in line and "resume with: mlsm" in line and "--resume" in line
    (tmp_path / "crash").unlink()
    resumed = cli(*args, "--chunk-size", "50", "--resume")
    assert resumed.code == 0, resumed.err
    assert counts_of("sqlite:///r.db", "c")["read"] == 600


def test_a_worker_that_cannot_load_the_models_is_one_line(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    only_here = """
    import multiprocessing
    if multiprocessing.current_process().name != "MainProcess":
        raise RuntimeError("no licence on this host")
"""
    models = write_models(only_here + MODELS)
    (data,) = write_inputs(tmp_path / "in", files=1, rows=50)
    result = cli("run", models, data, "--id-field", "id", "--workers", "2")
    assert result.code == 2
    assert (
        result.err.strip()
        .splitlines()[-1]
        .startswith("mlsm: error: a worker process could not load the models: cannot load models from")
    )
    assert "no licence on this host" in result.err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("executor", "who"),
    [(["--workers", "2"], "a worker process"), (["--executor", "ray", "--workers", "1"], "a Ray actor")],
    ids=["workers", "ray"],
)
def test_a_models_file_changed_after_the_run_recorded_it_stops_the_run_before_any_result(
    write_models: Callable[..., Path], tmp_path: Path, request: pytest.FixtureRequest, executor: list[str], who: str
) -> None:
    """The file rewrites itself while the main process imports it: the run records the code that process ran, the
    workers (or actors) load the new code, and the run stops with one line instead of storing their results under
    the hash of other code."""
    if "ray" in executor:
        request.getfixturevalue("ray_available")
    edited = MODELS.replace("round((data", "round(2 * (data")
    rewrite = f"""
    import pathlib
    pathlib.Path(__file__).write_text({textwrap.dedent(edited)!r})
"""
    models = write_models(rewrite + MODELS)
    (data,) = write_inputs(tmp_path / "in", files=1, rows=50)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    result = run_mlsm("run", models, data, "--id-field", "id", "--store", url, *executor, cwd=tmp_path)
    assert result.code == 2, result.err
    (line,) = [line for line in result.err.splitlines() if line.startswith("mlsm: error:")]
    assert line.startswith(f"mlsm: error: {who} loaded other code for model 'rules@1' than this run recorded")
    assert "Traceback" not in result.err
    with open_store(url) as store:
        (run,) = store.list_runs()
        assert run.status == "interrupted" and list(store.run_documents(run.id)) == []


# -- Ray -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_available() -> None:
    pytest.importorskip("ray", reason="Ray is an optional extra; scripts/test installs it")


def test_ray_gives_the_same_current_results_as_the_local_executor(
    ray_available: None, cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    models = write_models(MODELS)
    write_inputs(tmp_path / "in", files=2, rows=700)
    common = ["--id-field", "id", "--chunk-size", "100", "--run-id", "r"]
    local = cli("run", models, "in", *common, "--store", "sqlite:///local.db", "--rejects", "local.jsonl",
                "--output", "local-out.jsonl")  # fmt: skip
    assert local.code == 0, local.err
    environment = dict(os.environ)
    distributed = cli("run", models, "in", *common, "--store", "sqlite:///ray.db", "--executor", "ray",
                      "--workers", "2", "--rejects", "ray.jsonl", "--output", "ray-out.jsonl")  # fmt: skip
    assert distributed.code == 0, distributed.err
    assert dict(os.environ) == environment  # what ray.init sets (RAY_AUTH_MODE, PYTHONBREAKPOINT) is undone
    # the same input, the same current results, counts, rejects (file and line) and summary
    assert results_of("sqlite:///ray.db") == results_of("sqlite:///local.db")
    ray_counts, local_counts = counts_of("sqlite:///ray.db", "r"), counts_of("sqlite:///local.db", "r")
    assert ray_counts == local_counts and local_counts["read"] == 1400
    assert any(str(where).startswith("in/part-1.csv:") for where in local_counts["reject_lines"])
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()
    assert json.loads((tmp_path / "local.jsonl").read_text().splitlines()[0])["file"] == "in/part-0.csv"
    written = [json.loads(line)["id"] for line in (tmp_path / "ray-out.jsonl").read_text().splitlines()]
    in_order = [json.loads(line)["id"] for line in (tmp_path / "local-out.jsonl").read_text().splitlines()]
    assert sorted(written) == sorted(in_order) == sorted(results_of("sqlite:///ray.db"))
    first = (tmp_path / "ray-out.jsonl").read_text().splitlines()[0]  # one encoding: the bytes of `mlsm results`
    assert cli("results", json.loads(first)["id"], "--store", "sqlite:///ray.db").out.splitlines() == [first]
    assert local.out.split("  model")[1].split("elapsed")[0] == distributed.out.split("  model")[1].split("elapsed")[0]
    assert "records read 1,400" in distributed.out


def test_ray_resume_after_the_driver_is_killed_gives_exactly_one_result_per_record(
    ray_available: None, write_models: Callable[..., Path], tmp_path: Path, postgres_url: str
) -> None:
    slow = MODELS.replace("def batch(frame):", "def batch(frame):\n        import time; time.sleep(0.05)")
    models = write_models(slow)
    write_inputs(tmp_path / "in", files=2, rows=1500)
    args = [
        "run",
        str(models),
        "in",
        "--id-field",
        "id",
        "--store",
        postgres_url,
        "--run-id",
        "k",
        "--chunk-size",
        "50",
    ]
    args += ["--executor", "ray", "--workers", "2"]
    env = {k: v for k, v in os.environ.items() if k != "MLSM_STORE"}
    process = subprocess.Popen([sys.executable, "-m", "mlsm", *args], cwd=tmp_path, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    tree: dict[int, tuple[str, str]] = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            with open_store(postgres_url) as store:
                if len(store.chunk_marks("k")) >= 5:
                    break
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
            time.sleep(0.1)
        tree = process_tree(process.pid)  # the local Ray the driver started
        assert any("raylet" in command for _, command in tree.values()), tree
        process.send_signal(signal.SIGKILL)  # the driver alone: the local Ray must go with it
        process.wait(30)
        assert wait_for_exit(tree, 5) == {}
    finally:
        process.kill()
        kill_tree(tree)  # these processes only: another Ray on this machine is none of this test's business
    resumed = run_mlsm(*args, "--resume", cwd=tmp_path, timeout=300)
    assert resumed.code == 0, resumed.err
    with open_store(postgres_url) as store:
        ids = [d["id"] for d in store.run_documents("k")]
        assert len(ids) == len(set(ids))
        files = sorted((tmp_path / "in").iterdir())
        chunks = sum(len(list(open_input(f, id_field="id", fields=["a", "b"], chunk_size=50))) for f in files)
        assert len(store.chunk_marks("k")) == chunks  # every chunk committed once
    assert sorted(ids) == sorted(results_of(postgres_url))
    assert counts_of(postgres_url, "k")["read"] == 3000


def test_executor_ray_without_ray_installed_says_how_to_install_it(
    write_models: Callable[..., Path], tmp_path: Path
) -> None:
    """Ray is absent for this process: a package named ``ray`` that fails to import shadows the real one."""
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    models = write_models(MODELS)
    (data,) = write_inputs(tmp_path / "in", files=1, rows=10)
    env = {"PYTHONPATH": str(tmp_path / "shadow")}
    result = run_mlsm("run", models, data, "--id-field", "id", "--executor", "ray", cwd=tmp_path, env=env)
    assert result.code == 2
    assert result.err.strip() == "mlsm: error: --executor ray needs Ray, an optional extra: pip install 'mlsm[ray]'"


def test_ray_address_joins_a_running_cluster(
    ray_available: None, write_models: Callable[..., Path], tmp_path: Path
) -> None:
    """A Ray head started here with ``ray start`` stands in for a cluster: the run joins it, and leaves it up."""
    from ..servers import free_port

    ray = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray is not None
    port = free_port()
    # a folder of its own (short: Ray's socket paths must fit), so no other driver on this machine finds this head
    # through /tmp/ray; a mark in the environment of every process of it, so only those are stopped afterwards
    temp = tempfile.mkdtemp(prefix="mlsm-ray-")
    mark = uuid.uuid4().hex
    head = [ray, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
            "--disable-usage-stats", f"--temp-dir={temp}"]  # fmt: skip
    # head and job agree on authentication: none here (a local Ray uses tokens, and ``ray start`` may not)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "MLSM_TEST_RAY_HEAD": mark}
    subprocess.run(head, check=True, capture_output=True, timeout=180, env=env)
    try:
        models = write_models(MODELS)
        (data,) = write_inputs(tmp_path / "in", files=1, rows=300)
        # a real process: a driver joined to a cluster is not something to leave in the test process
        result = run_mlsm("run", models, data, "--id-field", "id", "--store", "sqlite:///ray.db", "--executor", "ray",
                          "--ray-address", f"127.0.0.1:{port}", "--workers", "1", "--run-id", "joined",
                          cwd=tmp_path, env=env, timeout=300)  # fmt: skip
        assert result.code == 0, result.err
        assert counts_of(f"sqlite:///{tmp_path / 'ray.db'}", "joined")["read"] == 300
        status = subprocess.run(
            [ray, "status", f"--address=127.0.0.1:{port}"], capture_output=True, timeout=60, env=env
        )
        assert status.returncode == 0  # the cluster outlives the job
    finally:
        # not `ray stop`: it stops every Ray on this machine, other people's included
        head_processes = processes_marked("MLSM_TEST_RAY_HEAD", mark)
        kill_tree(head_processes)
        wait_for_exit(head_processes, 30)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1:{port}", "cannot join the Ray cluster at '127.0.0.1:{port}': nothing answers there"),
        ("ray://127.0.0.1:{port}", "cannot join the Ray cluster at 'ray://127.0.0.1:{port}': nothing answers there"),
        ("head-node", "--ray-address 'head-node' is not HOST:PORT (or ray://HOST:PORT, or auto)"),
    ],
)
def test_a_ray_cluster_that_cannot_be_joined_is_one_line_and_no_run(
    ray_available: None, write_models: Callable[..., Path], tmp_path: Path, address: str, problem: str
) -> None:
    from ..servers import free_port

    port = free_port()
    models = write_models(MODELS)
    (data,) = write_inputs(tmp_path / "in", files=1, rows=20)
    result = run_mlsm("run", models, data, "--id-field", "id", "--executor", "ray", "--store", "sqlite:///r.db",
                      "--ray-address", address.format(port=port), cwd=tmp_path, timeout=60)  # fmt: skip
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert line.startswith("mlsm: error: " + problem.format(port=port))
    with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        assert store.list_runs() == []  # refused before any work


def test_ray_address_without_executor_ray_is_one_line(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    result = cli("run", "models.py", "in.csv", "--id-field", "id", "--ray-address", "127.0.0.1:6379")
    assert result.code == 2 and result.err.strip() == "mlsm: error: --ray-address needs --executor ray"
