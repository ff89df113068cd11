"""The hand-written floor of the whole-process batch benchmark (``bench_engine.py process``): what ``mlsm run``
does with ``models.py``, written directly: pandas chunks, ``predict_proba`` per model, the summary per row, the
JSON documents, ``executemany`` in one transaction per chunk into an equivalent SQLite table and index.

    python floor.py INPUT.csv OUT.db CHUNK_SIZE   (the estimators from $MLSM_BENCH_ESTIMATORS)
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time

import joblib
import pandas as pd

FEATURES = [f"f{i}" for i in range(8)]
KEYS = [("logit", "1.0"), ("hgb", "1.0"), ("forest", "1.0")]
SCHEMA = """
    PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
    CREATE TABLE results (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, run TEXT, ts INTEGER NOT NULL, doc TEXT NOT NULL);
    CREATE INDEX results_id_seq ON results (id, seq);
"""


def floor(input_path: str, db_path: str, chunk_size: int) -> None:
    """Score ``input_path`` into a new SQLite file ``db_path``, ``chunk_size`` rows per transaction."""
    estimators = joblib.load(os.environ["MLSM_BENCH_ESTIMATORS"])
    db = sqlite3.connect(db_path, isolation_level=None)
    db.executescript(SCHEMA)
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    for frame in pd.read_csv(input_path, chunksize=chunk_size, dtype={"id": str}):
        features = frame[FEATURES]
        scores = [estimators[name].predict_proba(features)[:, 1].tolist() for name, _ in KEYS]
        now = int(time.time())
        rows = []
        for i, lead in enumerate(frame["id"].tolist()):
            results: dict = {}
            best, best_score, total = None, -1.0, 0.0
            for (name, version), column in zip(KEYS, scores):
                score = column[i]
                results[name] = {version: {"score": score, "_status": "active"}}
                total += score
                if score > best_score:
                    best, best_score = name, score
            results["blend"] = {"1.0": {"score": round(total / len(KEYS), 4), "best": best, "_status": "draft"}}
            doc = {"id": lead, "_current": 0, "_timestamp": now, "_run": "floor", "results": results}
            rows.append((lead, "floor", now, encode(doc)))
        db.execute("BEGIN")
        db.executemany("INSERT INTO results (id, run, ts, doc) VALUES (?, ?, ?, ?)", rows)
        db.execute("COMMIT")
    db.close()


if __name__ == "__main__":
    floor(sys.argv[1], sys.argv[2], int(sys.argv[3]))
