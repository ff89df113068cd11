"""Real ``mlsm serve`` processes on a free loopback port: signals, drain, a full queue, reload, auth, workers."""

from __future__ import annotations

import json
import signal
import sqlite3
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlsm.runs._profiles import RunProfile
from mlsm.stores import RunRecord, open_store

from ..conftest import run_mlsm
from ..servers import kill_tree, process_tree, wait_for_exit
from .conftest import MODELS, Server, wait_until

pytestmark = pytest.mark.slow

SLOW_MODELS = """
    import time
    from mlsm import Model

    def slow(data, results):
        time.sleep(0.03)
        return {"a": data["a"]}

    MODELS = [Model("slow", {"a": int}, "1", slow, status="active")]
"""


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def test_sigterm_drains_in_flight_requests_and_every_200_is_stored(
    tmp_path: Path, serve: Callable[..., Server]
) -> None:
    models = write(tmp_path / "models.py", SLOW_MODELS)
    server = serve(models, "--id-field", "id", "--store", "sqlite:///results.db")
    signalled = threading.Event()
    signalled_at: list[float] = []
    outcomes: list[tuple[str, int | None, float, Any]] = []

    def client(worker: int) -> None:
        with server.client() as http:
            for i in range(40):
                key = f"w{worker}-{i}"
                try:
                    response = http.post("/v1/score", json={"id": key, "a": i})
                except httpx.TransportError as exc:
                    outcomes.append((key, None, time.monotonic(), repr(exc)))
                    return  # the server stopped accepting: this client is done
                outcomes.append((key, response.status_code, time.monotonic(), response.json()))
                if len(outcomes) >= 30 and not signalled.is_set():
                    signalled.set()
                    signalled_at.append(time.monotonic())
                    server.signal(signal.SIGTERM)

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(client, range(12)))
    assert server.wait(60) == 0
    ok = {key: body for key, status, _, body in outcomes if status == 200}
    answered_after_signal = [key for key, status, at, _ in outcomes if status == 200 and at > signalled_at[0]]
    assert answered_after_signal, "no request was in flight when SIGTERM arrived: the test proves nothing"
    assert all(status in (200, None) for _, status, _, _ in outcomes), outcomes
    with open_store(f"sqlite:///{tmp_path / 'results.db'}") as store:
        for key, body in ok.items():
            assert store.current(key) == body, key
        run = store.get_run(body["_run"])
        assert run is not None and run.status == "completed"
        assert run.rows == len(ok)  # stored exactly what was acknowledged
    assert server.events("stopped")[0]["stored"] == len(ok)


def test_a_full_queue_answers_503_and_queued_results_are_stored_once_the_store_frees_up(
    tmp_path: Path, serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    models = model_file(MODELS)
    db = tmp_path / "results.db"
    server = serve(
        models, "--id-field", "id", "--store", f"sqlite:///{db}", "--queue-size", "2", "--queue-wait-ms", "100"
    )
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # the store is busy: the writer waits for it
    try:
        with ThreadPoolExecutor(2) as pool:
            held = [
                pool.submit(httpx.post, server.url + "/v1/score", json={"id": f"held-{i}", "a": i, "b": 1}, timeout=60)
                for i in range(2)
            ]

            def queued() -> bool:
                return "mlsm_writer_queue_documents 2.0" in httpx.get(server.url + "/metrics").text

            wait_until(queued, 30, "two documents in the queue")
            refused = [httpx.post(server.url + "/v1/score", json={"id": f"late-{i}", "a": 1, "b": 1}) for i in range(3)]
            for response in refused:
                assert response.status_code == 503
                assert response.json()["detail"] == (
                    "result queue full (2 of 2 documents waiting for the store after 100 ms): "
                    "result not stored, retry later"
                )
                assert response.headers["retry-after"] == "1"
            assert not any(f.done() for f in held)
            lock.execute("ROLLBACK")
            answered = [f.result() for f in held]
    finally:
        lock.close()
    assert [r.status_code for r in answered] == [200, 200]
    with server.client() as http:
        assert http.get("/v1/results/held-0").json() == answered[0].json()
        assert http.get("/v1/results/late-0").status_code == 404
        metrics = http.get("/metrics").text
    assert 'mlsm_results_not_stored_total{reason="queue_full"} 3.0' in metrics
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0


def test_sighup_and_the_reload_endpoint_swap_good_sets_and_refuse_bad_ones(
    serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    path = model_file(MODELS)
    server = serve(path, "--id-field", "id", "--store", "sqlite:///results.db")
    with server.client() as http:
        model_file(MODELS.replace('VERSION = "1"', 'VERSION = "2"'))
        server.signal(signal.SIGHUP)

        def live() -> dict[str, Any]:
            return http.get("/v1/models").json()["live"]

        wait_until(lambda: live()["generation"] == 2, 30, "the SIGHUP reload")
        assert live()["trigger"] == "SIGHUP"
        assert http.post("/v1/score", json={"id": 1, "a": 1, "b": 1}).json()["results"]["adder"]["2"]["c"] == 2

        model_file("def broken(:\n")
        refused = http.post("/v1/admin/reload")
        assert refused.status_code == 409
        assert "SyntaxError" in refused.json()["reasons"][0]
        server.signal(signal.SIGHUP)
        wait_until(lambda: len(server.events("reload_refused")) == 2, 30, "the refused SIGHUP reload")
        assert server.events("reload_refused")[1]["trigger"] == "SIGHUP"
        assert live()["generation"] == 2
        assert http.post("/v1/score", json={"id": 2, "a": 2, "b": 1}).json()["results"]["adder"]["2"]["c"] == 3

        model_file(MODELS.replace('VERSION = "1"', 'VERSION = "3"'))
        good = http.post("/v1/admin/reload")
        assert good.status_code == 200 and good.json()["live"]["generation"] == 3
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0


def test_an_api_key_guards_the_api_of_a_real_server(
    tmp_path: Path, serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    path = model_file(MODELS)
    key_file = tmp_path / "key.txt"
    key_file.write_text("  file-key-123\n")
    server = serve(
        path, "--id-field", "id", "--api-key-file", key_file, "--host", "127.0.0.1", "--store", "sqlite:///r.db"
    )
    listening = server.events("listening")[0]
    assert listening["auth"] is True and "API key from --api-key-file" in listening["message"]
    assert httpx.post(server.url + "/v1/score", json={"id": 1, "a": 1, "b": 1}).status_code == 401
    good = {"Authorization": "Bearer file-key-123"}
    assert httpx.post(server.url + "/v1/score", json={"id": 1, "a": 1, "b": 1}, headers=good).status_code == 200
    assert httpx.get(server.url + "/healthz").status_code == 200
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0

    env_server = serve(
        path, "--id-field", "id", "--host", "127.0.0.1", "--store", "sqlite:///r.db", env={"MLSM_API_KEY": "env-key"}
    )
    assert "API key from MLSM_API_KEY" in env_server.events("listening")[0]["message"]
    assert httpx.get(env_server.url + "/v1/models", headers={"Authorization": "Bearer env-key"}).status_code == 200
    assert httpx.get(env_server.url + "/v1/models", headers={"Authorization": "Bearer file-key-123"}).status_code == 401


def test_without_a_key_it_listens_on_loopback_only_and_says_so(
    serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    server = serve(model_file(MODELS), "--id-field", "id", "--store", "sqlite:///r.db")
    listening = server.events("listening")[0]
    assert listening["host"] == "127.0.0.1" and listening["auth"] is False
    assert (
        "no API key configured (MLSM_API_KEY or --api-key-file): listening on loopback 127.0.0.1 only"
        in (listening["message"])
    )
    assert httpx.get(server.url + "/v1/models").status_code == 200


@pytest.mark.parametrize(
    ("args", "source", "message"),
    [
        (
            ["--api-key-file", "missing.txt"],
            MODELS,
            "mlsm: error: cannot read --api-key-file 'missing.txt': no such file",
        ),
        ([], "import nope_not_here\n", "mlsm: error: cannot load models: cannot load models from 'models.py'"),
        (  # adder is active and raises on its basic example (a=1)
            [],
            MODELS.replace('return {"c": data["a"] + data["b"]}', 'return {"c": 1 / (data["a"] - 1)}'),
            "mlsm: error: 1 of 3 models failed their preflight: adder@1: active model refused, its basic example "
            "fails (failed on its basic example and ",
        ),
        (["--store", "ftp://nowhere"], MODELS, "mlsm: error: unknown store URL 'ftp://nowhere'"),
    ],
    ids=["missing-key-file", "model-import-error", "preflight-failure", "bad-store"],
)
def test_setup_problems_exit_2_with_one_line(tmp_path: Path, args: list[str], source: str, message: str) -> None:
    write(tmp_path / "models.py", source)
    result = run_mlsm("serve", "models.py", "--id-field", "id", "--port", "0", *args, cwd=tmp_path, timeout=60)
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if not line.startswith("{")]
    assert len(lines) == 1 and lines[0].startswith(message), result.err


PARTNER_MODELS = """
    from mlsm import Field, Model

    def lead(data, results):
        if data["source"] == "partner":
            raise ValueError("cannot score partner leads")
        return {"score": 0.5 if data["source"] == "web" else 0.2}

    def unfinished(data, results):
        raise RuntimeError("not written yet")

    MODELS = [
        Model("lead", {"source": Field(str, choices=["web", "partner", "ad"])}, "1", lead, status="active"),
        Model("wip", {"visits": Field(int, required=False)}, "1", unfinished),
    ]
"""


def test_a_model_failing_its_preflight_on_some_inputs_serves_and_is_reported(
    tmp_path: Path, serve: Callable[..., Server]
) -> None:
    models = write(tmp_path / "models.py", PARTNER_MODELS)
    server = serve(models, "--id-field", "id", "--store", "sqlite:///results.db")
    with server.client() as http:
        partner = http.post("/v1/score", json={"id": "p-1", "source": "partner", "visits": 3}).json()["results"]
        assert "cannot score partner leads" in partner["lead"]["1"]["_error"]
        assert "not written yet" in partner["wip"]["1"]["_error"]  # a draft that always raises serves too
        web = http.post("/v1/score", json={"id": "p-2", "source": "web"}).json()["results"]
        assert web["lead"]["1"]["score"] == 0.5
        lead, wip = (model["preflight"] for model in http.get("/v1/models").json()["live"]["models"])
        assert (lead["passed"], lead["blocking"], lead["check"]) == (False, False, "raises")
        assert 0 < lead["failing"] < lead["examples"]
        assert "cannot score partner leads" in lead["first_failure"]
        assert lead["first_failure"].endswith('on input {"source": "partner"}')
        assert (wip["passed"], wip["blocking"]) == (False, False) and wip["failing"] == wip["examples"] > 0
        metrics = http.get("/metrics").text
        assert f'mlsm_model_preflight_failing_inputs{{model="lead@1"}} {lead["failing"]:.1f}' in metrics
        assert f'mlsm_model_preflight_failing_inputs{{model="wip@1"}} {wip["failing"]:.1f}' in metrics
        warnings = server.events("preflight_failed")
        assert [(w["model"], w["level"]) for w in warnings] == [("lead@1", "warning"), ("wip@1", "warning")]
        assert "cannot score partner leads" in warnings[0]["message"]

        # a reload to a set whose active model fails on its basic example ("web") is refused; the old set serves
        write(models, PARTNER_MODELS.replace('== "partner"', '!= "partner"'))
        refused = http.post("/v1/admin/reload")
        assert refused.status_code == 409
        assert refused.json()["reasons"][0].startswith("lead@1: active model refused, its basic example fails")
        assert (
            http.post("/v1/score", json={"id": "p-3", "source": "web"}).json()["results"]["lead"]["1"]["score"] == 0.5
        )
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0

    write(models, PARTNER_MODELS)
    strict = run_mlsm(
        "serve", "models.py", "--id-field", "id", "--port", "0", "--strict-preflight", cwd=tmp_path, timeout=60
    )
    assert strict.code == 2
    lines = [line for line in strict.err.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, strict.err
    assert lines[0].startswith("mlsm: error: 2 of 2 models failed their preflight: lead@1: failed on ")
    assert "(--strict-preflight refuses any failure)" in lines[0] and lines[0].endswith("(and 1 more)")


def test_with_several_workers_the_preflight_gauge_is_not_summed(tmp_path: Path, serve: Callable[..., Server]) -> None:
    models = write(tmp_path / "models.py", PARTNER_MODELS)
    server = serve(models, "--id-field", "id", "--store", "sqlite:///results.db", "--workers", "2")
    expected = httpx.get(server.url + "/v1/models").json()["live"]["models"][0]["preflight"]["failing"]
    assert expected > 0

    def gauge() -> list[float]:  # whichever worker answers the scrape
        text = httpx.get(server.url + "/metrics").text
        prefix = 'mlsm_model_preflight_failing_inputs{model="lead@1"} '
        return [float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix)]

    assert [gauge() for _ in range(6)] == [[expected]] * 6
    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0


def test_several_workers_share_the_port_reload_together_and_drain_on_sigterm(
    tmp_path: Path, serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    path = model_file(MODELS)
    server = serve(path, "--id-field", "id", "--store", "sqlite:///results.db", "--workers", "2")
    answered = {}
    for i in range(20):
        response = httpx.post(server.url + "/v1/score", json={"id": i, "a": i, "b": 1})  # a new connection each
        assert response.status_code == 200
        answered[str(i)] = response.json()

    def scored_total() -> float:  # whichever worker answers the scrape
        text = httpx.get(server.url + "/metrics").text
        return sum(
            float(line.split()[-1]) for line in text.splitlines() if line.startswith("mlsm_records_scored_total")
        )

    assert [scored_total() for _ in range(6)] == [20.0] * 6  # every worker's counts, summed

    def stored_run() -> RunRecord:
        with open_store(f"sqlite:///{tmp_path / 'results.db'}", mode="read") as store:
            found = store.get_run(answered["0"]["_run"])
        assert found is not None
        return found

    # while serving, the run record adds up both workers' shares within a few seconds (each reports every second)
    wait_until(lambda: stored_run().rows == 20, 30, "the run record counting both workers' documents")
    live = stored_run()
    assert live.status == "running" and live.counts["models"]["adder@1"]["ok"] == 20
    assert RunProfile.from_json(live.counts["profile"]).rows <= 20
    model_file(MODELS.replace('VERSION = "1"', 'VERSION = "2"'))
    assert httpx.post(server.url + "/v1/admin/reload").status_code == 200
    seen: dict[int, int] = {}

    def both_reloaded() -> bool:
        body = httpx.get(server.url + "/v1/models").json()
        seen[body["pid"]] = body["live"]["generation"]
        return len(seen) == 2 and set(seen.values()) == {2}

    wait_until(both_reloaded, 60, "both workers on generation 2")
    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0
    with open_store(f"sqlite:///{tmp_path / 'results.db'}") as store:
        for key, body in answered.items():
            assert store.current(key) == body
        run = store.get_run(body["_run"])
        assert run is not None and run.status == "completed" and run.info["settings"]["workers"] == 2
    # the final counts and drift profile are exact: every worker's last share, told as it stopped
    assert run.rows == 20 and run.counts["read"] == 20 and run.counts["scored"] == 20
    assert run.counts["models"]["adder@1"] == {"ok": 20, "errors": 0}
    profile = RunProfile.from_json(run.counts["profile"])
    assert profile.rows == 20 and profile.fields["a"].count == 20 and profile.fields["a"].maximum == 19
    # the supervisor recorded the code each worker served: the first set, and the reloaded one once
    assert [s["models"] for s in run.info["sets"]] == [
        ["adder@1", "doubler@1", "summary@1"],
        ["adder@2", "doubler@2", "summary@1"],
    ]
    assert run.info["sets"][1]["trigger"] in ("api", "SIGHUP")
    assert run.info["sets"][1]["provenance"]["models"]["adder@2"]["sha256"] == _sha256(path)
    assert list(run.info["provenance"]["models"]) == ["adder@2", "doubler@2", "summary@1"]


def _sha256(path: Path) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_worker_outlives_a_killed_supervisor(
    tmp_path: Path, serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    server = serve(model_file(MODELS), "--id-field", "id", "--store", "sqlite:///results.db", "--workers", "2")
    wait_until(lambda: len(server.events("worker_started")) == 2, 60, "both workers")
    assert httpx.post(server.url + "/v1/score", json={"id": 1, "a": 1, "b": 1}).status_code == 200
    tree = process_tree(server.process.pid)
    try:
        workers = [pid for pid, (_, command) in tree.items() if "multiprocessing.spawn" in command]
        assert len(workers) == 2, tree
        server.signal(signal.SIGKILL)
        server.wait(30)
        assert wait_for_exit(tree, 5) == {}

        def refused() -> bool:
            try:
                httpx.get(server.url + "/healthz", timeout=2)
            except httpx.TransportError:
                return True
            return False

        assert refused()  # nothing serves the port any more
    finally:
        kill_tree(tree)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_real_servers_log_shows_the_store_without_its_password(
    tmp_path: Path, serve: Callable[..., Server], postgres_url: str, workers: str
) -> None:
    password = httpx.URL(postgres_url).password
    assert password
    models = write(tmp_path / "models.py", MODELS)
    server = serve(models, "--id-field", "id", "--store", postgres_url, "--workers", workers)
    with server.client() as http:
        assert http.post("/v1/score", json={"id": "p-1", "a": 1, "b": 2}).status_code == 200
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    log = server.log_path.read_text()
    assert password not in log
    assert server.events("listening")[0]["store"].startswith("postgresql://mlsm:***@127.0.0.1:")


def test_the_next_supervisor_removes_the_metrics_folder_a_killed_one_left(
    serve: Callable[..., Server], model_file: Callable[[str], Path]
) -> None:
    path = model_file(MODELS)
    first = serve(path, "--id-field", "id", "--store", "sqlite:///results.db", "--workers", "2")
    leaked = list(Path(tempfile.gettempdir()).glob(f"mlsm-metrics-{first.process.pid}-*"))
    assert len(leaked) == 1 and any(leaked[0].iterdir())  # the workers' shared metrics files
    tree = process_tree(first.process.pid)
    first.process.kill()  # SIGKILL: no clean-up of its own; its workers die with it
    first.wait()
    assert wait_for_exit(tree, 30) == {}
    assert leaked[0].exists()
    second = serve(path, "--id-field", "id", "--store", "sqlite:///results.db", "--workers", "2")
    assert not leaked[0].exists()
    own = list(Path(tempfile.gettempdir()).glob(f"mlsm-metrics-{second.process.pid}-*"))
    assert len(own) == 1
    second.signal(signal.SIGTERM)
    assert second.wait(60) == 0
    assert not own[0].exists()  # and a clean stop removes its own


WIDE_MODELS = """
    from mlsm import Field, Model

    FIELDS = {f"f{i}": Field(float) for i in range(300)}

    def total(data, results):
        return {"total": sum(data.values())}

    MODELS = [Model("wide", FIELDS, "1", total)]
"""


def test_workers_whose_last_report_outgrows_the_pipe_stop_at_once_and_their_share_is_kept(
    tmp_path: Path, serve: Callable[..., Server]
) -> None:
    # 300 fields: each worker's final counts and drift profile are ~100 kB, more than the pipe to the supervisor holds
    models = write(tmp_path / "models.py", WIDE_MODELS)
    server = serve(models, "--id-field", "id", "--store", "sqlite:///results.db", "--workers", "2")
    with server.client() as http:
        for i in range(40):
            record = {"id": f"w-{i}", **{f"f{k}": (i * 7919 + k * 104729) % 1000 / 7 for k in range(300)}}
            assert http.post("/v1/score", json=record).status_code == 200
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0
    assert time.monotonic() - started < 20  # not the 60 s after which a late worker is killed
    assert not server.events("worker_killed")
    with open_store(f"sqlite:///{tmp_path / 'results.db'}", mode="read") as store:
        (run,) = store.list_runs()
    assert len(json.dumps(run.counts)) > 100_000  # the case: one worker's share does not fit in the pipe
    assert run.status == "completed" and run.rows == 40 and run.counts["models"]["wide@1"]["ok"] == 40


def test_sigterm_while_the_workers_still_load_stops_the_service_at_once(
    tmp_path: Path, serve: Callable[..., Server]
) -> None:
    slow = "import time\ntime.sleep(3)  # a slow import: the workers are still loading when SIGTERM comes\n"
    models = write(tmp_path / "models.py", MODELS)
    models.write_text(slow + models.read_text())
    server = serve(models, "--id-field", "id", "--store", "sqlite:///results.db", "--workers", "2", ready=False)
    wait_until(lambda: len(process_tree(server.process.pid)) >= 2, 30, "the workers started")
    time.sleep(4)  # the supervisor loaded the models (3 s); the workers are loading theirs
    tree = process_tree(server.process.pid)
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0
    assert time.monotonic() - started < 15
    assert wait_for_exit(tree, 10) == {}
    assert not server.events("worker_killed")
