"""The point-in-time join against a hand-written floor, timed in the same run on one SQLite store.

    .venv/bin/python benchmarks/bench_join.py [--leads 100000] [--history 1] [--repeats 3]

The store holds ``--leads`` leads scored by three models, ``--history`` documents per lead, and an outcome for every
lead. The floor reads each lead's current document with ``sqlite3``, builds a pandas frame, merges the outcomes and
calls scikit-learn's ``roc_auc_score`` per model. The join (``join_outcomes``, the score live at each decision) then
mlsm's own AUC per model. Reported: seconds (best of the repeats) and the ratio join / floor.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from timing import best, scratch  # noqa: E402  benchmarks/timing.py: this folder is on the path of a script run from it

from mlsm.documents import Documents, make_document  # noqa: E402
from mlsm.evaluation import _stats as stats  # noqa: E402
from mlsm.evaluation.join import join_outcomes  # noqa: E402
from mlsm.stores import open_store  # noqa: E402
from mlsm.stores.outcomes import Outcome  # noqa: E402

MODELS = [("gbm", "1.0"), ("gbm", "2.0"), ("logit", "1.0")]


def build(path: Path, leads: int, history: int) -> None:
    rng = np.random.default_rng(7)
    ids = [f"lead-{i:08d}" for i in range(leads)]
    truth = rng.random(leads)
    y = (rng.random(leads) < truth).astype(int)
    with open_store(f"sqlite:///{path}?synchronous=off") as store:
        for round_ in range(history):
            stamp = 1_700_000_000 + round_ * 86_400
            for start in range(0, leads, 50_000):
                part = ids[start : start + 50_000]
                noise = rng.random((len(part), len(MODELS)))
                docs = [
                    make_document(
                        "lead",
                        id_value,
                        _results(truth[start + i], noise[i]),
                        run=f"r{round_}",
                        timestamp=stamp,
                    )
                    for i, id_value in enumerate(part)
                ]
                store.write(Documents("lead", part, docs, run=f"r{round_}"))
        decided = 1_700_000_000 + history * 86_400
        for start in range(0, leads, 50_000):
            store.write_outcomes(
                [Outcome(ids[i], int(y[i]), decided, decided) for i in range(start, min(start + 50_000, leads))]
            )


def _results(truth: float, noise: np.ndarray) -> dict:
    results: dict = {}
    for k, (name, version) in enumerate(MODELS):
        score = float((1 - 0.2 * (k + 1)) * truth + 0.2 * (k + 1) * noise[k])
        results.setdefault(name, {})[version] = {"score": score, "_status": "active"}
    return results


def floor(path: Path) -> list[float]:
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    db = sqlite3.connect(path)
    rows = db.execute("SELECT doc, MAX(seq) FROM mlsm_results GROUP BY id ORDER BY id").fetchall()
    docs = [json.loads(text) for text, _ in rows]
    frame = pd.DataFrame(
        {"id": [d["lead"] for d in docs]} | {f"{n}@{v}": [d["results"][n][v]["score"] for d in docs] for n, v in MODELS}
    )
    outcomes = pd.read_sql_query("SELECT id, outcome FROM mlsm_outcomes", db)
    db.close()
    merged = frame.merge(outcomes, on="id")
    return [float(roc_auc_score(merged["outcome"], merged[f"{n}@{v}"])) for n, v in MODELS]


def ours(path: Path) -> list[float]:
    with open_store(f"sqlite:///{path}", mode="read") as store:
        joined = join_outcomes(store)
    return [stats.auc(m.outcomes, m.scores) for m in joined.models.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    path = scratch("mlsm-bench-join-") / "join.db"
    started = time.perf_counter()
    build(path, args.leads, args.history)
    print(f"store: {args.leads:,} leads x {args.history} documents, 3 models ({time.perf_counter() - started:.1f} s)")
    if args.history == 1:
        assert np.allclose(floor(path), ours(path)), (floor(path), ours(path))
    floor_s = best(lambda: floor(path), args.repeats)
    ours_s = best(lambda: ours(path), args.repeats)
    print(f"floor (sqlite3 + pandas + roc_auc_score): {floor_s:.2f} s")
    print(f"join_outcomes + AUC per model:            {ours_s:.2f} s  ({ours_s / floor_s:.2f}x the floor)")


if __name__ == "__main__":
    main()
