"""``mlsm evaluate`` and ``mlsm report`` over a million stored leads, as whole processes, against a hand-written floor.

    .venv/bin/python benchmarks/bench_evaluate.py [--leads 1000000] [--repeats 3] [--history 1,3] [--skip-report]

Each store (SQLite) holds ``--leads`` leads scored by three models, ``h`` documents per lead (one a day; the
decisions fall between the last two, so with ``h`` > 1 the newest document is written after the decision) and an
outcome for every lead. Stores are built once with the store API (``Store.write``, ``Store.write_outcomes``) and
kept in ``$TMPDIR/mlsm-bench-evaluate`` for the next run (``--rebuild`` to make them again).

Timed in turn, ``--repeats`` times each, as child processes (Python start-up and imports included in both):
  floor:    read every lead's current document with ``sqlite3``, ``json.loads`` it, a pandas frame merged with the
            outcomes, scikit-learn's ``roc_auc_score`` per model;
  evaluate: ``mlsm evaluate --store ... --json`` (the point-in-time join, then per model AUC with DeLong's CI, KS,
            Brier, log loss, calibration, deciles, and every pair compared with DeLong's paired test);
  report:   ``mlsm report --store ... --output report.html``.
Reported: medians of wall seconds, evaluate / floor (median of the pairs' ratios; bar: <= 1.5), report (bar: < 30
s), the same in CPU seconds (steadier on a shared machine), and the children's peak memory (``wait4``'s
``ru_maxrss``) with 1 and 3 documents per lead (flat: the ratio about 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

MODELS = [("gbm", "1.0"), ("gbm", "2.0"), ("logit", "1.0")]
DAY = 86_400
START = 1_700_000_000
CHUNK = 50_000
LAYOUT = 1  # bump when the stores' shape changes, so that cached stores are rebuilt


def build(path: Path, leads: int, history: int) -> None:
    """A store of ``leads`` leads x ``history`` documents (three models each) and an outcome per lead."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from mlsm.documents import Documents
    from mlsm.stores import open_store
    from mlsm.stores.outcomes import Outcome

    rng = np.random.default_rng(7)
    ids = [f"lead-{i:08d}" for i in range(leads)]
    truth = rng.random(leads)
    converted = (rng.random(leads) < truth).astype(int).tolist()
    partial = path.with_suffix(".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    with open_store(f"sqlite:///{partial}?synchronous=off") as store:
        for day in range(history):
            stamp, run = START + day * DAY, f"day-{day}"
            for start in range(0, leads, CHUNK):
                part = ids[start : start + CHUNK]
                weights = np.array([0.25, 0.5, 0.75])
                noisy = (1 - weights) * truth[start : start + CHUNK, None] + weights * rng.random((len(part), 3))
                texts = [
                    f'{{"lead":"{id_value}","_current":0,"_timestamp":{stamp},"_run":"{run}","results":{{"gbm":'
                    f'{{"1.0":{{"score":{a!r},"_status":"active"}},"2.0":{{"score":{b!r},"_status":"draft"}}}},'
                    f'"logit":{{"1.0":{{"score":{c!r},"_status":"active"}}}}}}}}'
                    for id_value, (a, b, c) in zip(part, noisy.tolist())
                ]
                store.write(Documents("lead", part, json=texts, run=run, timestamp=stamp))
        # decided half a day before the newest documents (with one document: half a day after it)
        decided = START + (history - 1) * DAY + (-DAY // 2 if history > 1 else DAY // 2)
        for start in range(0, leads, CHUNK):
            chunk = range(start, min(start + CHUNK, leads))
            store.write_outcomes([Outcome(ids[i], converted[i], float(decided), float(decided)) for i in chunk])
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.rename(path)


def cached_store(folder: Path, leads: int, history: int, rebuild: bool) -> Path:
    path = folder / f"v{LAYOUT}-leads{leads}-h{history}.db"
    if rebuild or not path.exists():
        started = time.perf_counter()
        # built in a child, so that this process stays small: Linux counts a forked child's peak memory from the
        # parent's size at the fork
        command = [sys.executable, str(Path(__file__).resolve()), "--build", str(path), "--leads", str(leads)]
        subprocess.run([*command, "--history", str(history)], check=True)
        print(f"built {path.name} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return path


def floor(path: str) -> None:
    """The hand-written floor (run as a child: ``bench_evaluate.py --floor DB``): prints the AUCs."""
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
    print(json.dumps({f"{n}@{v}": float(roc_auc_score(merged["outcome"], merged[f"{n}@{v}"])) for n, v in MODELS}))


def child(command: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """Run ``command``: (wall seconds, CPU seconds, peak resident MB, its standard output)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        stderr = process.stderr.read().decode() if process.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(command)} failed: {stderr}")
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read().decode()


def measure(db: Path, folder: Path, repeats: int, report: bool) -> dict[str, Any]:
    url = f"sqlite:///{db}"
    contenders = {
        "floor": [sys.executable, str(Path(__file__).resolve()), "--floor", str(db)],
        "evaluate": [sys.executable, "-m", "mlsm", "evaluate", "--store", url, "--json"],
    }
    if report:
        contenders["report"] = [sys.executable, "-m", "mlsm", "report", "--store", url, "-o", "report.html"]
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    peaks: dict[str, list[float]] = {name: [] for name in contenders}
    outputs: dict[str, str] = {}
    for _ in range(repeats):
        for name, command in contenders.items():
            wall, cpu, peak, outputs[name] = child(command, folder)
            walls[name].append(wall)
            cpus[name].append(cpu)
            peaks[name].append(peak)
    evaluated = json.loads(outputs["evaluate"])
    result: dict[str, Any] = {
        "documents_per_lead": int(db.stem.rsplit("-h", 1)[1]),
        "outcomes": evaluated["outcomes"],
        "auc": {m["model"]: round(m["auc"], 4) for m in evaluated["models"]},
        "floor_auc": {k: round(v, 4) for k, v in json.loads(outputs["floor"]).items()},
    }
    for name in contenders:
        result[f"{name}_s"] = round(statistics.median(walls[name]), 2)
        result[f"{name}_cpu_s"] = round(statistics.median(cpus[name]), 2)
        result[f"{name}_peak_mb"] = round(statistics.median(peaks[name]), 1)
    result["evaluate_over_floor"] = round(
        statistics.median(e / f for e, f in zip(walls["evaluate"], walls["floor"])), 3
    )
    result["evaluate_over_floor_cpu"] = round(
        statistics.median(e / f for e, f in zip(cpus["evaluate"], cpus["floor"])), 3
    )
    result["runs_s"] = {name: [round(t, 2) for t in times] for name, times in walls.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--history", default="1,3", help="documents per lead, one store each (comma-separated)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="build the stores again instead of reusing them")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mlsm-bench-evaluate")
    parser.add_argument("--floor", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--build", metavar="DB", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        floor(args.floor)
        return
    if args.build:
        build(args.build, args.leads, int(args.history))
        return
    args.cache.mkdir(parents=True, exist_ok=True)
    histories = [int(h) for h in args.history.split(",")]
    stores = [cached_store(args.cache, args.leads, h, args.rebuild) for h in histories]
    with tempfile.TemporaryDirectory(prefix="mlsm-bench-evaluate-") as work:
        results = [measure(db, Path(work), args.repeats, not args.skip_report) for db in stores]
    report: dict[str, Any] = {"leads": args.leads, "models": len(MODELS), "repeats": args.repeats, "stores": results}
    report["bars"] = {"evaluate_over_floor": "<= 1.5", "report_s": "< 30", "peak_mb_ratio": "about 1"}
    if len(results) > 1:
        low, high = results[0], results[-1]
        report["evaluate_peak_mb_ratio"] = round(high["evaluate_peak_mb"] / low["evaluate_peak_mb"], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
