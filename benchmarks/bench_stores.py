"""Store write throughput against each driver's own bulk insert, in one run (ratios, medians of alternating repeats).

    .venv/bin/python benchmarks/bench_stores.py [--documents 200000] [--repeats 3] [--backends sqlite,postgres,mongo]

For every backend, the same result documents (shaped like the lead-scoring example's: five model slots) are
written in chunks of 10,000:
  store: ``Store.write(batch, run)`` as a batch run does it, the run's progress committed with every chunk;
  raw:   the driver's bulk insert of the same documents into a table/collection with the same index, one
         transaction per chunk: SQLite ``executemany``, PostgreSQL ``COPY``, MongoDB ``insert_many``.
Reported per backend: documents/s of each and store/raw (bar: >= 0.7). PostgreSQL runs on a throw-away cluster
with fsync on; MongoDB on the nx-27017 wire-protocol server (or ``--mongo-url`` for a real one).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from timing import alternate, scratch  # benchmarks/timing.py: this folder is on the path of a script run from it

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK = 10_000


def make_documents(count: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = int(time.time())
    documents = []
    for _ in range(count):
        lead = str(uuid.UUID(int=rng.getrandbits(128)))
        score = rng.random()
        results = {
            "rules": {"1.0": {"score": round(rng.random(), 3), "reasons": ["long visit"], "_status": "active"}},
            "logit": {"1.0": {"score": rng.random(), "_status": "active"}},
            "gbm": {"1.0": {"score": score, "_status": "active"}, "2.0": {"score": rng.random(), "_status": "draft"}},
            "lead_score": {"1.0": {"score": round(score, 4), "model": "gbm@1.0", "priority": "B", "_status": "active"}},
        }
        documents.append({"lead_id": lead, "_current": 0, "_timestamp": now, "_run": "bench", "results": results})
    return documents


def chunks(documents: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [documents[i : i + CHUNK] for i in range(0, len(documents), CHUNK)]


def store_writer(url_for: Callable[[], str], documents: list[dict[str, Any]]) -> Callable[[], None]:
    from mlsm import RunRecord, open_store
    from mlsm.documents import Documents

    def write() -> None:
        with open_store(url_for()) as store:
            run = RunRecord.new(f"bench-{uuid.uuid4().hex[:8]}", {"id_field": "lead_id"})
            store.start_run(run)
            for part in chunks(documents):
                ids = [d["lead_id"] for d in part]
                run.rows += len(part)
                run.chunks += 1
                store.write(Documents("lead_id", ids, part, run=run.id), run)

    return write


def sqlite_raw(folder: Path, documents: list[dict[str, Any]]) -> Callable[[], None]:
    def write() -> None:
        db = sqlite3.connect(folder / f"raw-{uuid.uuid4().hex[:8]}.db", isolation_level=None)
        db.executescript(
            """PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
            CREATE TABLE results (
                seq INTEGER PRIMARY KEY, id TEXT NOT NULL, run TEXT, ts INTEGER NOT NULL, doc TEXT NOT NULL
            );
            CREATE INDEX results_id_seq ON results (id, seq);"""
        )
        for part in chunks(documents):
            rows = [(d["lead_id"], "bench", d["_timestamp"], json.dumps(d, separators=(",", ":"))) for d in part]
            db.execute("BEGIN")
            db.executemany("INSERT INTO results (id, run, ts, doc) VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        db.close()

    return write


def postgres_raw(url: str, documents: list[dict[str, Any]]) -> Callable[[], None]:
    import psycopg

    def write() -> None:
        table = f"raw_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(
                f"CREATE TABLE {table} (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                f'id TEXT COLLATE "C" NOT NULL, run TEXT, ts BIGINT NOT NULL, doc JSONB NOT NULL)'
            )
            db.execute(f"CREATE INDEX ON {table} (id, seq DESC)")
            for part in chunks(documents):
                copy_sql = f"COPY {table} (id, run, ts, doc) FROM STDIN"
                with db.transaction(), db.cursor() as cursor, cursor.copy(copy_sql) as copy:
                    for d in part:
                        copy.write_row((d["lead_id"], "bench", d["_timestamp"], json.dumps(d, separators=(",", ":"))))

    return write


def mongo_raw(url: str, documents: list[dict[str, Any]]) -> Callable[[], None]:
    import pymongo

    def write() -> None:
        base, _, _ = url.rpartition("/")
        client: Any = pymongo.MongoClient(base)
        collection = client[f"raw_{uuid.uuid4().hex[:8]}"]["results"]
        collection.create_index([("lead_id", 1), ("_current", 1)])
        for part in chunks(documents):
            collection.insert_many([dict(d) for d in part], ordered=True)
        client.close()

    return write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres,mongo")
    parser.add_argument("--postgres-url", help="an existing server (default: a throw-away cluster)")
    parser.add_argument("--mongo-url", help="mongodb://host:port/db of a real MongoDB (default: nx-27017)")
    args = parser.parse_args()
    from tests import servers

    documents = make_documents(args.documents)
    folder = scratch("mlsm-bench-stores-")
    report: dict[str, Any] = {"documents": args.documents, "chunk": CHUNK, "repeats": args.repeats, "backends": {}}
    for backend in args.backends.split(","):
        cleanup: Callable[[], None] = lambda: None  # noqa: E731
        if backend == "sqlite":
            url_for = lambda: f"sqlite:///{folder / uuid.uuid4().hex[:8]}.db"  # noqa: E731
            raw = sqlite_raw(folder, documents)
        elif backend == "postgres":
            if args.postgres_url:
                base = args.postgres_url
            else:
                cluster = servers.start_postgres(durable=True)
                base = cluster.url()
                cleanup = lambda cluster=cluster: servers.remove_postgres(cluster)  # noqa: E731

            def url_for(base: str = base) -> str:
                import psycopg

                schema = f"s_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(base, autocommit=True) as db:
                    db.execute(f"CREATE SCHEMA {schema}")
                return f"{base}?options=-csearch_path%3D{schema}"

            raw = postgres_raw(base, documents)
        else:
            if args.mongo_url:
                mongo_base = args.mongo_url.rsplit("/", 1)[0]
            else:
                server = servers.start_mongo(scratch("mlsm-bench-mongo-"))
                mongo_base = server.url
                cleanup = lambda server=server: servers.stop_mongo(server)  # noqa: E731
            url_for = lambda mongo_base=mongo_base: f"{mongo_base}/s_{uuid.uuid4().hex[:8]}"  # noqa: E731
            raw = mongo_raw(f"{mongo_base}/x", documents)
        try:
            t_store, t_raw = alternate(store_writer(url_for, documents), raw, args.repeats)
        finally:
            cleanup()
        med_store, med_raw = statistics.median(t_store), statistics.median(t_raw)
        report["backends"][backend] = {
            "store_documents_per_s": round(args.documents / med_store),
            "raw_documents_per_s": round(args.documents / med_raw),
            "ratio_store_over_raw": round(med_raw / med_store, 3),
            "bar": ">= 0.7",
            "store_runs_s": [round(t, 2) for t in t_store],
            "raw_runs_s": [round(t, 2) for t in t_raw],
        }
        print(json.dumps({backend: report["backends"][backend]}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
