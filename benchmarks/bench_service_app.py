"""The service's app in this process, without HTTP: where a request's time goes, and which moments are slow.

    .venv/bin/python benchmarks/bench_service_app.py                      # 16 clients, 6 s, 3 runs
    .venv/bin/python benchmarks/bench_service_app.py --clients 1 --runs 5
    MLSM_PROFILE=off .venv/bin/python benchmarks/bench_service_app.py     # without the drift profile

The app of ``mlsm serve examples/lead_scoring/models.py`` (default settings, its loaded heap frozen as the server
freezes it, storage on: SQLite in a temporary folder, access log on, to a file there) runs its lifespan in this
process; ``--clients`` coroutines call the ASGI app directly, each sending the next lead as soon as the previous
answer (which must be 200) is complete. No socket, parser or client process is involved, so the figures are the
app's own: what ``bench_service.py`` measures minus uvicorn and the load generator. Reported per run: p50/p99
latency, requests/s, CPU per request of each thread of the process (the event loop, the model-call threads that
score, the writer...), and the slow rounds: moments when a request took more than twice the median, with how many
requests took that long together and how far apart such moments were. A steady period between slow rounds points at
periodic work (that is how the drift-profile fold, every 256 stored records, was found holding up the requests of
its moment).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_service import EXAMPLE, ID_FIELD, leads, percentile


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each live thread of this process so far, by thread name."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    seconds: dict[str, float] = {}
    for task in os.listdir("/proc/self/task"):
        stat = Path(f"/proc/self/task/{task}/stat").read_text().rsplit(")", 1)[1].split()
        name = names.get(int(task), "other").rstrip("0123456789_")
        seconds[name] = seconds.get(name, 0.0) + (int(stat[11]) + int(stat[12])) / tick
    return seconds


def slow_rounds(trace: list[tuple[float, float]]) -> tuple[int, list[float]]:
    """Moments when requests took more than twice the median: how many, and the gaps between them (ms)."""
    median = statistics.median(end - start for start, end in trace)
    ends = sorted(end for start, end in trace if end - start > 2 * median)
    moments: list[float] = []
    for end in ends:
        if not moments or end - moments[-1] > 0.002:  # requests answered within 2 ms of each other: one moment
            moments.append(end)
    gaps = [1000 * (b - a) for a, b in itertools.pairwise(moments)]
    return len(moments), gaps


async def one_run(folder: Path, bodies: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    from mlsm.service.app import create_app
    from mlsm.service.logs import EventLog
    from mlsm.service.runtime import ServiceRuntime
    from mlsm.service.server import _freeze_heap
    from mlsm.service.settings import ServiceSettings

    settings = ServiceSettings(
        models=str(EXAMPLE / "models.py"),
        id_field=ID_FIELD,
        store=f"sqlite:///{folder / 'bench.db'}",
        allow_unreleased=True,  # the example's active models live in mlsm's own repository
    )
    with open(folder / "serve.log", "w") as log:
        runtime = ServiceRuntime.open(settings, log=EventLog(log, access=settings.access_log))
        _freeze_heap(runtime)  # as mlsm serve does once the models are loaded: full collections skip what it loaded
        app = create_app(runtime)
        async with app.router.lifespan_context(app):
            trace: list[tuple[float, float]] = []

            async def client(k: int, stop_at: float) -> None:
                i = k
                while time.perf_counter() < stop_at:
                    body = bodies[i % len(bodies)]
                    i += clients
                    await _post(app, body, trace)

            await asyncio.gather(*(client(k, time.perf_counter() + 2) for k in range(clients)))  # warm-up
            trace.clear()
            cpu = thread_cpu()
            started = time.perf_counter()
            await asyncio.gather(*(client(k, time.perf_counter() + seconds) for k in range(clients)))
            elapsed = time.perf_counter() - started
            after = thread_cpu()
    latencies = [end - start for start, end in trace]
    moments, gaps = slow_rounds(trace)
    return {
        "requests": len(trace),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "rps": len(trace) / elapsed,
        "cpu_us": {name: 1e6 * (after[name] - cpu.get(name, 0.0)) / len(trace) for name in after},
        "slow_moments": moments,
        "slow_gap_ms": statistics.median(gaps) if gaps else float("nan"),
    }


async def _post(app: Any, body: bytes, trace: list[tuple[float, float]]) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/score",
        "raw_path": b"/v1/score",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # the body was read: the client stays connected until the answer
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.perf_counter()
    await app(scope, receive, send)
    trace.append((started, time.perf_counter()))
    if statuses != [200]:
        raise SystemExit(f"a request was answered {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16, help="requests in flight")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds per run, after a 2 s warm-up")
    parser.add_argument("--runs", type=int, default=3, help="runs (a fresh app each); medians are reported")
    args = parser.parse_args()
    from mlsm.demo import ensure_artifacts

    ensure_artifacts(EXAMPLE)
    bodies = [json.dumps(record).encode() for record in leads(2000)]
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="mlsm-bench-app-") as tmp:
            runs.append(asyncio.run(one_run(Path(tmp), bodies, args.clients, args.seconds)))
    profile = "off" if os.environ.get("MLSM_PROFILE", "").lower() == "off" else "on"
    print(f"the service's app in-process, {args.clients} clients, drift profile {profile}; medians of {args.runs} runs")
    for key, label in (("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("rps", "requests/s")):
        print(f"  {label:12} {statistics.median(run[key] for run in runs):9.2f}")
    print(
        f"  slow moments (> 2x the median): {statistics.median(run['slow_moments'] for run in runs):.0f} a run, "
        f"{statistics.median(run['slow_gap_ms'] for run in runs):.0f} ms apart (median gap)"
    )
    names = sorted({name for run in runs for name in run["cpu_us"]})
    cpu = {name: statistics.median(run["cpu_us"].get(name, 0.0) for run in runs) for name in names}
    print(
        "  CPU µs a request by thread: "
        + ", ".join(f"{n} {v:.0f}" for n, v in sorted(cpu.items(), key=lambda x: -x[1]) if v >= 1)
    )


if __name__ == "__main__":
    main()
