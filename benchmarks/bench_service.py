"""The scoring service on loopback against the engine in-process and MLflow's ``models serve``, in one run.

    .venv/bin/python benchmarks/bench_service.py                 # concurrency 1 and 16, 4 s each, 3 runs
    .venv/bin/python benchmarks/bench_service.py --runs 5 --concurrency 1 16 64 --json out.json
    .venv/bin/python benchmarks/bench_service.py --models my_models.py --mlflow off

A real ``mlsm serve examples/lead_scoring/models.py --allow-unreleased`` (default settings, storage on: a SQLite
store in a temporary folder, access log on, to a file) is started on a free loopback port. A minimal asyncio
HTTP/1.1 client (keep-alive, one connection per concurrent user, each sending one lead after another) keeps ``c``
requests in flight for the given time; each response must be 200. Reported per level, as the median of ``--runs``
runs (a fresh server each): p50/p99 latency, requests/s and the server's CPU time per request (user + system,
from /proc: the figure least moved by other processes on a shared machine). Next to it, in the same run, the
engine scores the same leads in this process: ``Engine.score`` one lead at a time (what one request costs without
HTTP, grouping or storage) and ``score_columns`` in groups of 16 (the vectorized path).

MLflow (``--mlflow``, default ``auto``: when its environment exists): ``mlflow models serve`` (one worker,
``--env-manager local``) of the example's champion pipeline (gbm 1.0 with the example's feature rules, as a
pyfunc) in its own virtual environment under ``~/.cache/mlsm-bench/mlflow-venv`` (``--mlflow install`` creates
it with ``python -m venv`` and pip), driven by the same client with ``{"dataframe_records": [lead]}``. It scores
one model and stores nothing; mlsm scores five and commits every result before answering. Ratios are mlsm's
requests/s over MLflow's and MLflow's p50 over mlsm's, per concurrency level.

Targets (issue 14): p50 at concurrency 1 at most 3 ms, p99 at concurrency 16 at most 12 ms. Each run also serves a
hand-written floor (:data:`FLOOR_APP`: a bare ASGI app on the same uvicorn that parses the body and answers) and prints
mlsm's latency over it: this machine's speed varies by up to 2x from hour to hour, and the floor shows the speed of the
moment. The machine has 2
cores shared by client and server, so the client's own cost is in the figures; compare medians. ``--client`` (default
``auto``): ``wrk`` (Debian's package; one thread, ``c`` connections, the same leads in turn) when it is installed, else
the asyncio client. Both cost little next to the server (measured at c=16: wrk 0.04 ms of CPU a request, the asyncio
client 0.07 ms, against the server's ~0.5 ms) and give about the same figures for one server process, which is bound by
its one core (the GIL) while the second core is nearly idle; ``--serve-args '--workers 2'`` uses it, and then the
asyncio client shares the two cores with two server processes (p99 at c=16 14.0 ms against wrk's 11.5 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lead_scoring"
ID_FIELD = "Prospect ID"


def leads(n: int) -> list[dict[str, Any]]:
    """``n`` synthetic leads as JSON-ready records (strings, as a web form would send them)."""
    sys.path.insert(0, str(EXAMPLE))
    from leads import generate_leads

    frame = generate_leads(n, seed=5)
    return [{k: v for k, v in row.items() if v == v and v is not None} for row in frame.to_dict(orient="records")]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- the service over loopback --------------------------------------------------------------------------------------


def start_server(folder: Path, extra: list[str], models: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    log = folder / "serve.log"
    command = [sys.executable, "-m", "mlsm", "serve", str(models), "--id-field", ID_FIELD]
    command += ["--port", "0", "--store", f"sqlite:///{folder / 'bench.db'}", *extra]
    # the example's active models live in mlsm's own repository, on whatever branch this checkout is
    command += ["--allow-unreleased"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"mlsm serve exited: {log.read_text()}")
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("event") == "listening":
                return process, json.loads(line)["url"], log
        time.sleep(0.1)
    process.kill()
    raise SystemExit("mlsm serve did not start in 120 s")


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads responses with a Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` to ``path``; the status and the response body."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load(
    url: str, bodies: list[bytes], concurrency: int, seconds: float, path: str = "/v1/score", pid: int | None = None
) -> dict[str, float]:
    """Keep ``concurrency`` requests in flight for ``seconds``: their p50/p99 latency, requests/s and (with ``pid``)
    the server's CPU milliseconds per request."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connections = [await Connection.open(host, int(port)) for _ in range(concurrency)]
    latencies: list[float] = []
    failures = 0
    stop_at = time.perf_counter() + seconds

    async def user(k: int, connection: Connection) -> None:
        nonlocal failures
        i = k
        while time.perf_counter() < stop_at:
            body = bodies[i % len(bodies)]
            i += concurrency
            started = time.perf_counter()
            status, _ = await connection.post(path, body)
            latencies.append(time.perf_counter() - started)
            failures += status != 200

    cpu = cpu_seconds(pid) if pid is not None else 0.0
    started = time.perf_counter()
    await asyncio.gather(*(user(k, c) for k, c in enumerate(connections)))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu if pid is not None else float("nan")
    for connection in connections:
        connection.close()
    if failures:
        raise SystemExit(f"{failures} requests did not answer 200")
    return {
        "requests": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "rps": len(latencies) / elapsed,
        "cpu_ms": cpu * 1000 / len(latencies),
    }


_WRK_SCRIPT = """
local bodies = {%s}
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  return wrk.format(nil, "%s", nil, bodies[(counter %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def wrk_load(
    url: str, bodies: list[bytes], concurrency: int, seconds: float, path: str = "/v1/score", pid: int | None = None
) -> dict[str, float]:
    """What :func:`load` measures, with ``wrk`` as the client (one thread, ``concurrency`` keep-alive connections,
    each sending the bodies in turn, one request in flight per connection): a client from outside Python, which
    costs 0.04 ms of CPU a request here (the asyncio client 0.07 ms)."""
    listed = ",".join(_lua_string(body) for body in bodies)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % (listed, path))
    try:
        cpu = cpu_seconds(pid) if pid is not None else 0.0
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "-s", script.name, url]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        cpu = cpu_seconds(pid) - cpu if pid is not None else float("nan")
    finally:
        os.unlink(script.name)
    line = next(line for line in out.splitlines() if line.startswith("WRK "))
    requests, duration_us, p50_us, p99_us, errors, non_2xx = (int(v) for v in line.split()[1:])
    if errors or non_2xx:
        raise SystemExit(f"wrk: {errors} socket errors, {non_2xx} responses not 2xx")
    return {
        "requests": requests,
        "p50_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
        "rps": requests / (duration_us / 1e6),
        "cpu_ms": cpu * 1000 / max(requests, 1),
    }


def warm_up(measure: Callable[..., dict[str, float]], url: str, bodies: list[bytes], path: str = "/v1/score") -> None:
    """Load the server until it answers (worker processes load their models after the socket is bound)."""
    deadline = time.monotonic() + 120
    while measure(url, bodies, 16, 3.0, path)["requests"] < 100:
        if time.monotonic() > deadline:
            raise SystemExit("the server did not answer within 120 s")


def _lua_string(body: bytes) -> str:
    return '"' + body.decode().replace("\\", "\\\\").replace('"', '\\"') + '"'


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its descendants (MLflow's server is a child) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += cpu_seconds(int(child))
    return total


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (to its process group when it leads one), then wait for it."""
    if os.getpgid(process.pid) == process.pid:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def medians(runs: list[dict[int, dict[str, float]]]) -> dict[int, dict[str, float]]:
    """Per concurrency level, the median of each figure over the runs."""
    return {c: {k: statistics.median(run[c][k] for run in runs) for k in runs[0][c]} for c in runs[0]}


# -- the engine in-process --------------------------------------------------------------------------------------------


def engine_figures(records: list[dict[str, Any]], seconds: float) -> dict[str, dict[str, float]]:
    from mlsm.engine import Engine
    from mlsm.lifecycle.loader import load_models
    from mlsm.service.grouping import score_records

    engine = Engine(load_models(str(EXAMPLE / "models.py")).models)
    for record in records[:50]:
        engine.score(record)  # warm-up
    latencies = []
    stop_at = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        engine.score(records[i % len(records)])
        latencies.append(time.perf_counter() - started)
        i += 1
    one = {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "rps": len(latencies) / sum(latencies),
    }
    group_times = []
    stop_at = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < stop_at:
        group = [records[(i + k) % len(records)] for k in range(16)]
        started = time.perf_counter()
        score_records(engine, group, True)
        group_times.append(time.perf_counter() - started)
        i += 16
    grouped = {
        "p50_ms": percentile(group_times, 50) * 1000,
        "p99_ms": percentile(group_times, 99) * 1000,
        "rps": 16 * len(group_times) / sum(group_times),
    }
    return {"engine.score (1 record)": one, "score_columns (16 records)": grouped}


# -- MLflow's models serve of the same pipeline, for comparison --------------------------------------------------------

MLFLOW_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlsm-bench" / "mlflow-venv"

# The champion pipeline (gbm 1.0) as an MLflow pyfunc: the example's feature rules (features.prepare_columns) written
# with pandas alone, since mlsm is not installed in MLflow's environment, then predict_proba.
MLFLOW_MODEL = """
import joblib, numpy as np, pandas as pd, mlflow.pyfunc

CATEGORICAL = ["Lead Origin", "Lead Source", "Last Activity", "What is your current occupation"]
NUMERIC = ["TotalVisits", "Total Time Spent on Website", "Page Views Per Visit"]


class LeadScore(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.pipeline = joblib.load(context.artifacts["pipeline"])["pipeline"]

    def predict(self, context, model_input, params=None):
        frame = model_input.reindex(columns=[*CATEGORICAL, *NUMERIC, "Do Not Email"])
        out = {}
        for name in CATEGORICAL:
            values = frame[name].astype(object)
            kept = values.where(values.notna() & (values != "Select"), "missing")
            out[name] = kept.astype(str).str.strip().str.title().astype(object)
        for name in NUMERIC:
            out[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
        out["Do Not Email"] = (frame["Do Not Email"].astype(object) == True).astype(np.float64)
        return pd.DataFrame({"score": self.pipeline.predict_proba(pd.DataFrame(out))[:, 1]})
"""

SAVE_MLFLOW_MODEL = """
import sys, mlflow.pyfunc
sys.path.insert(0, sys.argv[1])
from lead_score_pyfunc import LeadScore
mlflow.pyfunc.save_model(sys.argv[2], python_model=LeadScore(), artifacts={"pipeline": sys.argv[3]},
                         code_paths=[sys.argv[1] + "/lead_score_pyfunc.py"])
"""


def mlflow_python(install: bool) -> tuple[Path | None, str]:
    """The Python of a virtual environment with MLflow (created and installed with pip when ``install``), or None
    and why not."""
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists() and install:
        import sklearn

        MLFLOW_VENV.parent.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True, timeout=120)
            # the artifact is loaded by the same scikit-learn version it was saved with
            packages = ["mlflow", f"scikit-learn=={sklearn.__version__}", "joblib"]
            subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True, timeout=900)
        except (subprocess.SubprocessError, OSError) as exc:
            shutil.rmtree(MLFLOW_VENV, ignore_errors=True)
            return None, f"MLflow could not be installed in {MLFLOW_VENV}: {exc}"
    if not python.exists():
        return None, f"no MLflow environment in {MLFLOW_VENV} (run with --mlflow install)"
    check = subprocess.run([str(python), "-c", "import mlflow, sklearn"], capture_output=True, timeout=120)
    if check.returncode != 0:
        return None, f"MLflow in {MLFLOW_VENV} does not import: {check.stderr.decode()[-300:]}"
    return python, ""


def start_mlflow(python: Path, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``mlflow models serve`` (one worker, this environment's packages) of the gbm 1.0 pipeline on a free port."""
    (folder / "lead_score_pyfunc.py").write_text(MLFLOW_MODEL)
    model = folder / "mlflow-model"
    artifact = EXAMPLE / "artifacts" / "gbm-1.0.joblib"
    subprocess.run([str(python), "-c", SAVE_MLFLOW_MODEL, str(folder), str(model), str(artifact)], check=True)
    port = _free_port()
    mlflow = python.parent / "mlflow"
    command = [str(mlflow), "models", "serve", "-m", str(model), "--env-manager", "local", "-h", "127.0.0.1"]
    command += ["-p", str(port), "-w", "1"]
    log = open(folder / "mlflow.log", "wb")  # noqa: SIM115 - closed with the process
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its uvicorn
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=env, start_new_session=True
    )
    return process, _listening(process, port, folder / "mlflow.log", "mlflow models serve", 180)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(process: subprocess.Popen[bytes], port: int, log: Path, what: str, seconds: float) -> str:
    """The URL of ``process`` once it accepts connections on ``port``; ``RuntimeError`` if it exits or never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"{what} did not start in {seconds:g} s")


# -- the floor: what a Python HTTP service costs on this machine before doing any work -------------------------------

# A hand-written ASGI app on the same uvicorn (httptools, uvloop) as mlsm serve: it reads the body, parses it with
# orjson and answers a small JSON object. Measured in the same run as mlsm serve, it says how fast this machine is
# right now (the shared machines here vary by up to 2x from hour to hour) and what of mlsm's latency is the HTTP
# stack's own.
FLOOR_APP = """
import orjson


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    record = orjson.loads(body)
    answer = orjson.dumps({"id": record.get("Prospect ID"), "scored": True})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
"""


def start_floor(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The floor app (:data:`FLOOR_APP`) on uvicorn, one process, no access log, on a free port."""
    (folder / "mlsm_bench_floor.py").write_text(FLOOR_APP)
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "mlsm_bench_floor:app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    log = folder / "floor.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    return process, _listening(process, port, log, "the floor app", 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--runs", type=int, default=3, help="runs (a fresh server each); medians are reported")
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--models", default=str(EXAMPLE / "models.py"), help="the model file to serve")
    parser.add_argument("--mlflow", choices=["auto", "install", "off"], default="auto", help="MLflow comparison")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--serve-args", default="", help="more options for mlsm serve, e.g. '--workers 2'")
    parser.add_argument(
        "--client", choices=["auto", "wrk", "python"], default="auto", help="load generator (auto: wrk when installed)"
    )
    args = parser.parse_args()
    client = "wrk" if args.client == "wrk" or (args.client == "auto" and shutil.which("wrk")) else "python"

    def measure(
        url: str, bodies: list[bytes], c: int, seconds: float, path: str = "/v1/score", pid: int | None = None
    ) -> dict[str, float]:
        if client == "wrk":
            return wrk_load(url, bodies, c, seconds, path, pid)
        return asyncio.run(load(url, bodies, c, seconds, path, pid))

    from mlsm.demo import ensure_artifacts

    ensure_artifacts(EXAMPLE)
    records = leads(args.leads)
    bodies = [json.dumps(record).encode() for record in records]
    figures: dict[str, Any] = {"cpus": os.cpu_count(), "runs": args.runs, "client": client, "service": {}, "engine": {}}
    mlflow, note = (None, "--mlflow off") if args.mlflow == "off" else mlflow_python(args.mlflow == "install")
    frames = [json.dumps({"dataframe_records": [record]}).encode() for record in records]
    service_runs, mlflow_runs, floor_runs = [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="mlsm-bench-") as tmp:
            process, url, _ = start_server(Path(tmp), args.serve_args.split(), Path(args.models).resolve())
            try:
                warm_up(measure, url, bodies[:200])  # every worker process answering
                service_runs.append(
                    {c: measure(url, bodies, c, args.seconds, pid=process.pid) for c in args.concurrency}
                )
            finally:
                stop(process)
            floor, floor_url = start_floor(Path(tmp))
            try:
                warm_up(measure, floor_url, bodies[:200])
                floor_runs.append(
                    {c: measure(floor_url, bodies, c, args.seconds, pid=floor.pid) for c in args.concurrency}
                )
            finally:
                stop(floor)
            if mlflow is not None:
                try:
                    server, mlflow_url = start_mlflow(mlflow, Path(tmp))
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    mlflow, note = None, f"mlflow models serve did not run: {exc}"
                    continue
                try:
                    warm_up(measure, mlflow_url, frames[:200], "/invocations")
                    mlflow_runs.append(
                        {
                            c: measure(mlflow_url, frames, c, args.seconds, "/invocations", server.pid)
                            for c in args.concurrency
                        }
                    )
                finally:
                    stop(server)
    figures["service"] = medians(service_runs)
    figures["floor"] = medians(floor_runs)
    if mlflow_runs:
        figures["mlflow"] = medians(mlflow_runs)
    else:
        figures["mlflow_note"] = note
    figures["engine"] = engine_figures(records, min(args.seconds, 3.0))

    options = f" {args.serve_args}" if args.serve_args else ""
    print(f"mlsm serve{options}, {Path(args.models).name} ({len(records)} leads), storage on (SQLite), loopback,")
    print(f"{figures['cpus']} cores; client: {client}; medians of {args.runs} runs")
    print(f"  {'':28} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'cpu ms/req':>11}")
    labels = {"service": "mlsm serve", "floor": "floor (bare ASGI app)", "mlflow": "mlflow models serve"}
    for name in ("service", "floor", "mlflow"):
        for concurrency, row in figures.get(name, {}).items():
            label = f"{labels[name]} c={concurrency}"
            print(f"  {label:28} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['rps']:8.0f} {row['cpu_ms']:11.2f}")
    for label, row in figures["engine"].items():
        print(f"  {label:28} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['rps']:8.0f}  (records/s)")
    if "mlflow" in figures:
        for concurrency, row in figures["service"].items():
            theirs = figures["mlflow"][concurrency]
            print(
                f"\n  vs MLflow at c={concurrency}: {row['rps'] / theirs['rps']:.1f}x the requests/s, "
                f"p50 {theirs['p50_ms'] / row['p50_ms']:.1f}x lower, {theirs['cpu_ms'] / row['cpu_ms']:.1f}x less CPU "
                "a request",
                end="",
            )
        print()
    else:
        print(f"\n  MLflow comparison skipped: {note}")
    for concurrency, row in figures["service"].items():
        floor_row = figures["floor"][concurrency]
        print(
            f"  over the floor at c={concurrency}: p50 +{row['p50_ms'] - floor_row['p50_ms']:.2f} ms, "
            f"p99 +{row['p99_ms'] - floor_row['p99_ms']:.2f} ms, {floor_row['rps'] / row['rps']:.1f}x fewer requests/s"
        )
    c1, c16 = figures["service"].get(1), figures["service"].get(16)
    if c1 is not None:
        print(f"  target p50 at c=1 at most 3 ms: {c1['p50_ms']:.1f} ms, {'met' if c1['p50_ms'] <= 3 else 'MISSED'}")
    if c16 is not None:
        verdict = "met" if c16["p99_ms"] <= 12 else "MISSED"
        print(f"  target p99 at c=16 at most 12 ms: {c16['p99_ms']:.1f} ms, {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
