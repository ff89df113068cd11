"""Reading one id's current document and its history in a large store: latency against the store's size.

    .venv/bin/python benchmarks/bench_lookups.py [--documents 10000000] [--backends sqlite,postgres] [--lookups 2000]

The store is filled with result documents (three per id on average, so ids have a history), then ``current(id)``
and ``history(id)`` are timed for random ids; reported: p50/p99 in milliseconds, and the same after filling a
store ten times smaller in the same run, so that growth is visible as a ratio (an index lookup barely grows).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from timing import scratch  # benchmarks/timing.py: this folder is on the path of a script run from it

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK = 20_000


def fill(url: str, documents: int) -> list[str]:
    from mlsm import RunRecord, open_store
    from mlsm.documents import Documents

    rng = random.Random(documents)
    ids = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(max(1, documents // 3))]
    with open_store(url) as store:
        run = RunRecord.new(f"fill-{uuid.uuid4().hex[:6]}", {"id_field": "lead"})
        store.start_run(run)
        now = int(time.time())
        for start in range(0, documents, CHUNK):
            chosen = [ids[rng.randrange(len(ids))] for _ in range(min(CHUNK, documents - start))]
            docs = [
                {"lead": lead, "_current": 0, "_timestamp": now, "_run": run.id,
                 "results": {"gbm": {"1.0": {"score": rng.random(), "_status": "active"}}}}
                for lead in chosen
            ]  # fmt: skip
            run.chunks += 1
            store.write(Documents("lead", chosen, docs, run=run.id), run)
    return ids


def measure(url: str, ids: list[str], lookups: int) -> dict[str, float]:
    from mlsm import open_store

    rng = random.Random(7)
    sample = [rng.choice(ids) for _ in range(lookups)]
    current, history = [], []
    with open_store(url) as store:
        for lead in sample:
            started = time.perf_counter()
            store.current(lead)
            current.append(time.perf_counter() - started)
            started = time.perf_counter()
            store.history(lead)
            history.append(time.perf_counter() - started)

    def pct(values: list[float], q: float) -> float:
        return round(statistics.quantiles(values, n=100)[int(q) - 1] * 1000, 3)

    return {"current_p50_ms": pct(current, 50), "current_p99_ms": pct(current, 99),
            "history_p50_ms": pct(history, 50), "history_p99_ms": pct(history, 99)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    from tests import servers

    folder = scratch("mlsm-bench-lookups-")
    report: dict[str, Any] = {"documents": args.documents}
    for backend in args.backends.split(","):
        cluster = None
        if backend == "postgres":
            cluster = servers.start_postgres(durable=True)
        try:
            for size in (args.documents // 10, args.documents):
                url = (
                    f"sqlite:///{folder / f'{size}.db'}"
                    if backend == "sqlite"
                    else f"{cluster.url()}?options=-csearch_path%3Ds{size}"  # type: ignore[union-attr]
                )
                if cluster is not None:
                    cluster.admin(f"CREATE SCHEMA s{size} AUTHORIZATION mlsm", database="mlsm")
                started = time.perf_counter()
                ids = fill(url, size)
                filled = time.perf_counter() - started
                report[f"{backend}@{size}"] = {"fill_s": round(filled, 1), **measure(url, ids, args.lookups)}
                print(json.dumps({f"{backend}@{size}": report[f"{backend}@{size}"]}), flush=True)
        finally:
            if cluster is not None:
                servers.remove_postgres(cluster)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
