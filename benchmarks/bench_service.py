"""The scoring service on loopback against the engine in-process, with the example models, in one run.

    .venv/bin/python benchmarks/bench_service.py                 # concurrency 1, 16, 64; 4 s each
    .venv/bin/python benchmarks/bench_service.py --seconds 8 --concurrency 1 16 64 --json out.json

A real ``mlsm serve examples/lead_scoring/models.py --allow-unreleased`` (default settings, SQLite store in a
temporary folder, access log on, to a file) is started on a free loopback port. A minimal asyncio HTTP/1.1 client
(keep-alive, one connection per concurrent user, each sending one lead after another) keeps ``c`` requests in
flight for the given time; each response must be 200. Reported per level: p50/p99 latency and requests/s. Next to
it, in the same run, the engine scores the same leads in this process: ``Engine.score`` one lead at a time (the
real-time path, what one request costs without HTTP, grouping or storage) and ``score_columns`` in groups of 16
(the vectorized path).

Bar (issue 4): p99 under 50 ms at concurrency 16. The machine has 2 cores shared by client and server, so the
client's own cost is in the figures; run it several times and compare medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
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


async def load(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict[str, float]:
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
            status, _ = await connection.post("/v1/score", body)
            latencies.append(time.perf_counter() - started)
            failures += status != 200

    started = time.perf_counter()
    await asyncio.gather(*(user(k, c) for k, c in enumerate(connections)))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    if failures:
        raise SystemExit(f"{failures} requests did not answer 200")
    return {
        "requests": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "rps": len(latencies) / elapsed,
    }


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--models", default=str(EXAMPLE / "models.py"), help="the model file to serve")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--serve-args", default="", help="more options for mlsm serve, e.g. '--workers 2'")
    args = parser.parse_args()

    from mlsm.demo import ensure_artifacts

    ensure_artifacts(EXAMPLE)
    records = leads(args.leads)
    bodies = [json.dumps(record).encode() for record in records]
    figures: dict[str, Any] = {"cpus": os.cpu_count(), "service": {}, "engine": {}}
    with tempfile.TemporaryDirectory(prefix="mlsm-bench-") as tmp:
        process, url, _ = start_server(Path(tmp), args.serve_args.split(), Path(args.models))
        try:
            asyncio.run(load(url, bodies[:200], 16, 3.0))  # warm-up (every worker process)
            for concurrency in args.concurrency:
                figures["service"][concurrency] = asyncio.run(load(url, bodies, concurrency, args.seconds))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    figures["engine"] = engine_figures(records, min(args.seconds, 3.0))

    options = f" {args.serve_args}" if args.serve_args else ""
    print(f"mlsm serve{options}, example models ({len(records)} leads), loopback, {figures['cpus']} cores")
    print(f"  {'':28} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for concurrency, row in figures["service"].items():
        label = f"service c={concurrency}"
        print(f"  {label:28} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['rps']:8.0f}")
    for label, row in figures["engine"].items():
        print(f"  {label:28} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['rps']:8.0f}  (records/s)")
    c16 = figures["service"].get(16)
    if c16 is not None:
        verdict = "meets" if c16["p99_ms"] < 50 else "MISSES"
        print(f"\n  bar: p99 under 50 ms at c=16: {c16['p99_ms']:.1f} ms, {verdict} the bar")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
