"""A store that fails during a run: a short outage is retried; a long one stops the run, which then resumes.

The PostgreSQL server itself is stopped and started (real server, real outage).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlsm import open_store

from ..servers import PG_PASSWORD, PostgresCluster
from .test_resume import MODELS, committed_chunks, start, write_input


@pytest.fixture
def cluster(postgres_cluster: PostgresCluster | None) -> Iterator[PostgresCluster]:
    if postgres_cluster is None:
        pytest.skip("MLSM_TEST_POSTGRES_URL names a server these tests cannot stop and start")
    yield postgres_cluster
    if not postgres_cluster.running():  # whatever happened, the other tests need their server
        postgres_cluster.start()


def wait_for_chunks(url: str, run_id: str, count: int, process: object) -> None:
    deadline = time.monotonic() + 60
    while committed_chunks(url, run_id) < count:
        assert process.poll() is None, process.stderr.read()  # type: ignore[attr-defined]
        assert time.monotonic() < deadline
        time.sleep(0.02)


def check_exactly_once(url: str, run_id: str, ids: list[str]) -> None:
    with open_store(url) as store:
        run = store.get_run(run_id)
        assert run is not None and run.status == "completed"
        assert [d["id"] for d in store.run_documents(run_id)] == ids


def test_a_short_outage_is_retried_and_the_run_completes(
    cluster: PostgresCluster, postgres_url: str, tmp_path: Path, write_models: Callable[..., Path]
) -> None:
    models = write_models(MODELS)
    ids, _ = write_input(tmp_path / "input.csv")
    args = ["run", str(models), "input.csv", "--id-field", "id", "--store", postgres_url, "--chunk-size", "25"]
    process = start([*args, "--run-id", "blip"], tmp_path)
    wait_for_chunks(postgres_url, "blip", 3, process)
    cluster.stop("fast")
    time.sleep(1.5)
    cluster.start()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "run blip: completed" in out
    check_exactly_once(postgres_url, "blip", ids)


def test_a_long_outage_stops_the_run_with_one_line_naming_the_resume_command(
    cluster: PostgresCluster, postgres_url: str, tmp_path: Path, write_models: Callable[..., Path]
) -> None:
    models = write_models(MODELS)
    ids, _ = write_input(tmp_path / "input.csv")
    args = ["run", str(models), "input.csv", "--id-field", "id", "--store", postgres_url, "--chunk-size", "25"]
    process = start([*args, "--run-id", "down", "--store-retry-seconds", "2"], tmp_path)
    wait_for_chunks(postgres_url, "down", 3, process)
    cluster.stop("fast")
    try:
        _, err = process.communicate(timeout=120)
    finally:
        cluster.start()
    assert process.returncode == 3
    (line,) = err.strip().splitlines()[-1:]
    assert line.startswith("mlsm: stopped: run 'down' stopped, the store stayed unavailable for 2 s")
    assert "last committed chunk:" in line and "Traceback" not in err
    assert PG_PASSWORD not in line.split("resume with:")[0]  # the store's message hides the password
    command = shlex.split(line.split("resume with: ", 1)[1])
    assert command[0] == "mlsm" and "--resume" in command and "--run-id" in command
    resumed = start(command[1:], tmp_path)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    check_exactly_once(postgres_url, "down", ids)
