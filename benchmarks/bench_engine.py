"""Engine throughput against hand-written floors, measured in one run (ratios, medians of alternating repeats).

    .venv/bin/python benchmarks/bench_engine.py record   # (a) per-record path vs a naive loop
    .venv/bin/python benchmarks/bench_engine.py batch    # (b) batch path + SQLite vs pandas/predict_proba/executemany
    .venv/bin/python benchmarks/bench_engine.py example  # (c) Engine.score of the example's model set, per lead
    .venv/bin/python benchmarks/bench_engine.py process  # (d) `mlsm run` as a whole process vs a floor script

(a) Three plain-Python models (legacy if-then rules, a points scorecard, a hand-written logistic regression) and a
    summary, scored one record at a time by ``Engine.score`` (validation, output
    checks, isolation included), against a loop that calls the same functions with no checks at all.
    Reported: engine throughput / naive throughput (bar: >= 0.8).
(b) The example's three scikit-learn models (logit, gbm 1.0, gbm 2.0) and a summary, run by ``mlsm``'s batch
    runner from CSV into SQLite, against a floor written by hand: ``pandas.read_csv`` in chunks, the same three
    model functions (each ``prepare`` + ``predict_proba``), the same summary inline, the documents built and
    ``executemany``-d into SQLite with the same schema and settings. Reported: engine time / floor time (bar: <= 1.25).
(c) ``Engine.score`` of ``examples/lead_scoring/models.py`` as it is (rules, logit, two gbm versions, the summary)
    on generated leads read as a CSV gives them (strings), one lead at a time: milliseconds per lead, the median of
    ``repeats`` passes over the leads (target of issue 14: at most 0.5 ms). ``--models`` times another checkout's
    example (run it with that checkout's ``src`` on ``PYTHONPATH``) for a before/after comparison.
(d) ``mlsm run`` as a whole process (``python -m mlsm run``: startup, imports, loading the models included) with
    three ``batch=True`` scikit-learn models (logistic regression, histogram gradient boosting, a 30-tree random
    forest) on 8 numeric features and a summary (``batch_process/models.py``), CSV into SQLite, against a floor
    script doing the same by hand (``batch_process/floor.py``: ``read_csv`` chunks, ``predict_proba``, the summary,
    JSON documents, ``executemany`` in one transaction per chunk), each a fresh process. The same two measured
    in-process too (``run_batch`` vs the floor's function), which shows what starting a process costs.
    Reported: time ratios whole-process and in-process (bar: <= 1.15 whole-process). The estimators and the input
    are made once and cached in the temporary folder (training is never timed).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from timing import alternate, scratch  # benchmarks/timing.py: this folder is on the path of a script run from it

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lead_scoring"
sys.path.insert(0, str(EXAMPLE))


# -- (a) per-record path --------------------------------------------------------------------------------------


def record_benchmark(records: int, repeats: int) -> dict[str, Any]:
    import math
    import random

    from mlsm import Engine, Field, Model, SummaryModel

    def rules(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        score = 0.15
        if data["occupation"] == "Working Professional":
            score += 0.35
        if data["origin"] == "Lead Add Form" or data["source"] == "Reference":
            score += 0.3
        seconds = data["seconds"]
        if seconds > 1000:
            score += 0.2
        elif seconds > 300:
            score += 0.1
        if data["activity"] in ("SMS Sent", "Had a Phone Conversation"):
            score += 0.15
        return {"score": round(min(max(score, 0.0), 1.0), 3)}

    # a points scorecard, as marketing teams keep them: a band table per field
    bands = {
        "seconds": [(0, 0), (60, 5), (300, 12), (900, 20), (1500, 28)],
        "visits": [(0, 0), (1, 4), (3, 8), (6, 12), (10, 10)],
        "views": [(0.0, 0), (1.5, 3), (2.5, 6), (4.0, 8)],
    }
    category_points = {
        "origin": {"Lead Add Form": 25, "Landing Page Submission": 10, "API": 5},
        "source": {"Reference": 20, "Google": 6, "Organic Search": 6, "Direct Traffic": 3},
        "occupation": {"Working Professional": 25, "Unemployed": 5, "Student": -5},
        "activity": {"SMS Sent": 15, "Email Opened": 6, "Page Visited on Website": 5, "Email Bounced": -15},
    }

    def scorecard(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        points = 0
        for name, table in bands.items():
            value = data[name] or 0
            for low, award in table:
                if value >= low:
                    band_points = award
            points += band_points
        for name, table in category_points.items():
            points += table.get(data[name], 0)
        if data["no_email"]:
            points -= 10
        return {"points": points, "score": round(min(max(points / 120, 0.0), 1.0), 3)}

    # a logistic regression written out by hand from its coefficients
    intercept = -2.1
    numeric = {"seconds": 0.0011, "visits": 0.045, "views": 0.08}
    categorical = {
        "origin": {"Lead Add Form": 2.2, "API": -0.3},
        "source": {"Reference": 1.1, "Olark Chat": -0.4},
        "occupation": {"Working Professional": 2.4, "Student": -0.6},
        "activity": {"SMS Sent": 0.9, "Email Bounced": -1.2},
    }

    def logistic(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        z = intercept
        for name, weight in numeric.items():
            z += weight * (data[name] or 0)
        for name, table in categorical.items():
            z += table.get(data[name], 0.0)
        if data["no_email"]:
            z -= 1.0
        return {"score": round(1.0 / (1.0 + math.exp(-z)), 4)}

    def winner(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        best_name, best_score = None, -1.0
        for name in ("logistic", "scorecard", "rules"):
            slot = results[name]["1"]
            if "score" in slot and slot["score"] > best_score:
                best_name, best_score = name, slot["score"]
        return {"score": best_score, "model": best_name}

    fields = {
        "origin": Field(str, required=False),
        "source": Field(str, required=False),
        "occupation": Field(str, required=False),
        "activity": Field(str, required=False),
        "seconds": Field(int, ge=0),
        "visits": Field(int, ge=0),
        "views": Field(float, required=False),
        "no_email": bool,
    }
    models = [
        Model("rules", fields, "1", rules, status="active"),
        Model("scorecard", fields, "1", scorecard, status="active"),
        Model("logistic", fields, "1", logistic),
    ]
    summary = SummaryModel("winner", [{"name": m.name, "version": "1"} for m in models], "1", winner)
    engine = Engine([*models, summary])
    rng = random.Random(5)
    data = [
        {
            "id": str(i),
            "origin": rng.choice(["API", "Landing Page Submission", "Lead Add Form"]),
            "source": rng.choice(["Google", "Reference", "Direct Traffic"]),
            "occupation": rng.choice(["Unemployed", "Working Professional", None]),
            "activity": rng.choice(["SMS Sent", "Email Opened", "Email Bounced"]),
            "seconds": rng.randint(0, 2000),
            "visits": rng.randint(0, 12),
            "views": rng.choice([None, 1.5, 2.0, 3.25]),
            "no_email": rng.random() < 0.1,
        }
        for i in range(records)
    ]

    def with_engine() -> None:
        score = engine.score
        for record in data:
            score(record)

    plain = [(m.name, m.version, m.fcn) for m in models]

    def naive() -> None:
        for record in data:
            results: dict[str, Any] = {}
            for name, version, fcn in plain:
                results[name] = {version: fcn(data=record, results=results)}
            results["winner"] = {"1": winner(data=record, results=results)}

    t_engine, t_naive = alternate(with_engine, naive, repeats, warm_up=True)
    med_engine, med_naive = statistics.median(t_engine), statistics.median(t_naive)
    return {
        "benchmark": "per-record path, 3 plain-Python models + summary",
        "records": records,
        "repeats": repeats,
        "engine_records_per_s": round(records / med_engine),
        "naive_records_per_s": round(records / med_naive),
        "throughput_ratio_engine_over_naive": round(med_naive / med_engine, 3),
        "bar": ">= 0.8",
        "engine_runs_s": [round(t, 4) for t in t_engine],
        "naive_runs_s": [round(t, 4) for t in t_naive],
    }


# -- (b) batch path with SQLite -----------------------------------------------------------------------------------


def batch_benchmark(records: int, repeats: int, chunk_size: int) -> dict[str, Any]:
    import joblib
    import pandas as pd
    from features import FIELDS, prepare  # type: ignore[import-not-found]
    from leads import write_leads  # type: ignore[import-not-found]

    from mlsm import Engine, Model, SummaryModel, open_store
    from mlsm.demo import ensure_artifacts
    from mlsm.runs import RunOptions, run_batch

    ensure_artifacts(EXAMPLE)
    keys = [("logit", "1.0"), ("gbm", "1.0"), ("gbm", "2.0")]
    pipelines = {key: joblib.load(EXAMPLE / "artifacts" / f"{key[0]}-{key[1]}.joblib")["pipeline"] for key in keys}

    def scorer(pipeline: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
        def score(frame: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"score": pipeline.predict_proba(prepare(frame))[:, 1]})

        return score

    def pick(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        for name, version in keys[:2]:
            slot = results[name][version]
            if "score" in slot:
                return {"score": round(slot["score"], 4), "model": f"{name}@{version}"}
        return {"score": None, "model": None}

    functions = {key: scorer(pipelines[key]) for key in keys}
    models = [Model(n, FIELDS, v, functions[(n, v)], status="active", batch=True) for n, v in keys]
    engine = Engine(
        [*models, SummaryModel("lead_score", [{"name": n, "version": v} for n, v in keys[:2]], "1.0", pick)]
    )
    folder = scratch("mlsm-bench-")
    leads = write_leads(folder / "leads.csv", records, seed=11)
    counter = iter(range(10**6))

    def with_engine() -> None:
        db = folder / f"engine-{next(counter)}.db"
        with open_store(f"sqlite:///{db}") as store:
            run_batch(engine, store, RunOptions(str(leads), "Prospect ID", chunk_size=chunk_size, progress=False))

    schema = """
        PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
        CREATE TABLE results (
            seq INTEGER PRIMARY KEY, id TEXT NOT NULL, run TEXT, ts INTEGER NOT NULL, doc TEXT NOT NULL
        );
        CREATE INDEX results_id_seq ON results (id, seq);
    """
    dtypes = {"Prospect ID": str, "Lead Origin": str, "Lead Source": str, "Last Activity": str,
              "What is your current occupation": str}  # fmt: skip

    def floor() -> None:
        db = sqlite3.connect(folder / f"floor-{next(counter)}.db", isolation_level=None)
        db.executescript(schema)
        for frame in pd.read_csv(leads, chunksize=chunk_size, dtype=dtypes):
            frame = frame[frame["Prospect ID"].notna()]
            frame["Do Not Email"] = frame["Do Not Email"].map({"Yes": True, "No": False})
            frame["TotalVisits"] = pd.to_numeric(frame["TotalVisits"], errors="coerce")
            # the same three model functions the engine calls (each prepares its own input)
            scores = {key: functions[key](frame)["score"].tolist() for key in keys}
            now = int(time.time())
            rows = []
            for i, lead in enumerate(frame["Prospect ID"].tolist()):
                results = {
                    name: {version: {"score": scores[(name, version)][i], "_status": "active"}}
                    for name, version in keys[:2]
                }
                results["gbm"]["2.0"] = {"score": scores[("gbm", "2.0")][i], "_status": "active"}
                first = results["logit"]["1.0"]["score"]
                results["lead_score"] = {"1.0": {"score": round(first, 4), "model": "logit@1.0", "_status": "draft"}}
                doc = {"Prospect ID": lead, "_current": 0, "_timestamp": now, "_run": "floor", "results": results}
                rows.append((lead, "floor", now, json.dumps(doc, separators=(",", ":"), ensure_ascii=False)))
            db.execute("BEGIN")
            db.executemany("INSERT INTO results (id, run, ts, doc) VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        db.close()

    t_engine, t_floor = alternate(with_engine, floor, repeats, warm_up=True)
    med_engine, med_floor = statistics.median(t_engine), statistics.median(t_floor)
    return {
        "benchmark": "batch path, 3 scikit-learn models + summary + SQLite, CSV input",
        "records": records,
        "chunk_size": chunk_size,
        "repeats": repeats,
        "engine_records_per_s": round(records / med_engine),
        "floor_records_per_s": round(records / med_floor),
        "time_ratio_engine_over_floor": round(med_engine / med_floor, 3),
        "bar": "<= 1.25",
        "engine_runs_s": [round(t, 3) for t in t_engine],
        "floor_runs_s": [round(t, 3) for t in t_floor],
    }


# -- (c) the example, one lead at a time ------------------------------------------------------------------------


def example_benchmark(records: int, repeats: int, models: Path) -> dict[str, Any]:
    import csv

    from leads import write_leads  # type: ignore[import-not-found]

    from mlsm import Engine
    from mlsm.demo import ensure_artifacts
    from mlsm.lifecycle.project import load_model_set

    ensure_artifacts(models.parent)
    engine = Engine(load_model_set(str(models)).models)
    folder = scratch("mlsm-bench-")
    with open(write_leads(folder / "leads.csv", records, seed=5), newline="") as file:
        leads = list(csv.DictReader(file))
    for lead in leads[:50]:  # warm up (the record path is compiled on first use)
        engine.score(lead)
    passes = []
    for _ in range(repeats):
        started = time.perf_counter()
        for lead in leads:
            engine.score(lead)
        passes.append((time.perf_counter() - started) / len(leads))
    return {
        "benchmark": f"Engine.score of {models}, one lead at a time",
        "records": records,
        "repeats": repeats,
        "ms_per_lead": round(statistics.median(passes) * 1000, 4),
        "target": "<= 0.5 ms",
        "passes_ms_per_lead": [round(t * 1000, 4) for t in passes],
    }


# -- (d) `mlsm run` as a whole process -----------------------------------------------------------------------------

PROCESS = Path(__file__).resolve().parent / "batch_process"


def process_inputs(records: int) -> tuple[Path, Path]:
    """The cached input CSV of ``records`` rows (an id, 8 numeric features) and the fitted estimators' joblib file,
    made on first use (training is slow and not what is measured)."""
    import joblib
    import numpy as np
    import pandas as pd
    import sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    cache = Path(tempfile.gettempdir()) / f"mlsm-bench-process-{sklearn.__version__}"
    cache.mkdir(exist_ok=True)
    estimators, data = cache / "estimators.joblib", cache / f"rows-{records}.csv"
    rng = np.random.default_rng(17)

    def rows(n: int) -> tuple[pd.DataFrame, Any]:
        x = rng.normal(size=(n, 8)).round(4) * [1, 2, 5, 10, 0.5, 1, 3, 100] + [0, 0, 10, 50, 0, 0, 0, 500]
        z = x[:, 0] - 0.4 * x[:, 1] + 0.1 * x[:, 2] * x[:, 4] + np.sin(x[:, 5] * 2) + 0.002 * (x[:, 7] - 500)
        y = rng.random(n) < 1 / (1 + np.exp(-z))
        return pd.DataFrame(x.round(4), columns=[f"f{i}" for i in range(8)]), y

    if not estimators.exists():
        x, y = rows(20_000)
        fitted = {
            "logit": LogisticRegression(max_iter=1000).fit(x, y),
            "hgb": HistGradientBoostingClassifier(random_state=0).fit(x, y),
            "forest": RandomForestClassifier(n_estimators=30, max_depth=12, random_state=0, n_jobs=1).fit(x, y),
        }
        joblib.dump(fitted, estimators.with_suffix(".tmp"))
        estimators.with_suffix(".tmp").replace(estimators)
    if not data.exists():
        x, _ = rows(records)
        x.insert(0, "id", [f"L{i:07d}" for i in range(records)])
        x.to_csv(data.with_suffix(".tmp"), index=False)
        data.with_suffix(".tmp").replace(data)
    return data, estimators


def _alternate_processes(
    a: Callable[[], Any], b: Callable[[], Any], repeats: int
) -> tuple[tuple[list[float], list[float]], tuple[list[float], list[float]]]:
    """Like ``timing.alternate`` (one untimed call of each first), each call's wall time and its child processes'
    CPU time (user + system: what a busy machine's other work disturbs least)."""
    import resource

    a()
    b()
    times: list[tuple[list[float], list[float]]] = [([], []), ([], [])]
    for _ in range(repeats):
        for fn, (walls, cpus) in zip((a, b), times):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            fn()
            walls.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times[0], times[1]


def process_benchmark(
    records: int, repeats: int, chunk_size: int, *, threads: int = 1, in_process: bool = True
) -> dict[str, Any]:
    data, estimators = process_inputs(records)
    # the same native thread count in both (OpenMP in histogram gradient boosting): on a busy machine, threads
    # waiting for each other would otherwise dominate what is measured
    os.environ.update({"MLSM_BENCH_ESTIMATORS": str(estimators), "OMP_NUM_THREADS": str(threads)})
    folder = scratch("mlsm-bench-process-")
    counter = iter(range(10**6))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    run_args = ["--id-field", "id", "--chunk-size", str(chunk_size), "--no-progress", "--allow-unreleased"]

    def mlsm_run() -> None:
        store = f"sqlite:///{folder / f'engine-{next(counter)}.db'}"
        command = [sys.executable, "-m", "mlsm", "run", str(PROCESS / "models.py"), str(data), "--store", store]
        subprocess.run([*command, *run_args], env=env, check=True, stdout=subprocess.DEVNULL)

    def floor_script() -> None:
        db = str(folder / f"floor-{next(counter)}.db")
        subprocess.run([sys.executable, str(PROCESS / "floor.py"), str(data), db, str(chunk_size)], env=env, check=True)

    (t_engine, cpu_engine), (t_floor, cpu_floor) = _alternate_processes(mlsm_run, floor_script, repeats)
    med_engine, med_floor = statistics.median(t_engine), statistics.median(t_floor)
    report: dict[str, Any] = {
        "benchmark": "mlsm run as a whole process, 3 batch scikit-learn models + summary into SQLite, CSV input",
        "records": records,
        "chunk_size": chunk_size,
        "repeats": repeats,
        "threads": threads,
        "process_time_ratio_run_over_floor": round(med_engine / med_floor, 3),
        "process_cpu_ratio_run_over_floor": round(statistics.median(cpu_engine) / statistics.median(cpu_floor), 3),
        "bar": "<= 1.15",
        "run_median_s": round(med_engine, 3),
        "floor_median_s": round(med_floor, 3),
        "run_cpu_median_s": round(statistics.median(cpu_engine), 3),
        "floor_cpu_median_s": round(statistics.median(cpu_floor), 3),
        "run_runs_s": [round(t, 3) for t in t_engine],
        "floor_runs_s": [round(t, 3) for t in t_floor],
    }
    if in_process:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(threads):
            report.update(_in_process(data, folder, counter, repeats, chunk_size))
    return report


def _in_process(data: Path, folder: Path, counter: Any, repeats: int, chunk_size: int) -> dict[str, Any]:
    """The same run and floor called in this process (models loaded, modules imported: no startup)."""
    sys.path.insert(0, str(PROCESS))
    import floor as floor_module  # type: ignore[import-not-found]
    import models as models_module  # type: ignore[import-not-found]

    from mlsm import Engine, open_store
    from mlsm.runs import RunOptions, run_batch

    engine = Engine(models_module.MODELS)

    def with_engine() -> None:
        with open_store(f"sqlite:///{folder / f'engine-{next(counter)}.db'}") as store:
            run_batch(engine, store, RunOptions(str(data), "id", chunk_size=chunk_size, progress=False))

    def floor() -> None:
        floor_module.floor(str(data), str(folder / f"floor-{next(counter)}.db"), chunk_size)

    t_engine, t_floor = alternate(with_engine, floor, repeats, warm_up=True)
    med_engine, med_floor = statistics.median(t_engine), statistics.median(t_floor)
    return {
        "in_process_time_ratio_run_over_floor": round(med_engine / med_floor, 3),
        "in_process_run_median_s": round(med_engine, 3),
        "in_process_floor_median_s": round(med_floor, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["record", "batch", "example", "process"])
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument(
        "--models", type=Path, default=EXAMPLE / "models.py", help="example: the models file (another checkout's)"
    )
    parser.add_argument("--threads", type=int, default=1, help="process: native threads per process (OpenMP)")
    parser.add_argument("--no-in-process", action="store_true", help="process: only the whole processes")
    args = parser.parse_args()
    if args.which == "record":
        report = record_benchmark(args.records or 50_000, args.repeats)
    elif args.which == "example":
        report = example_benchmark(args.records or 500, args.repeats, args.models.resolve())
    elif args.which == "process":
        report = process_benchmark(
            args.records or 200_000,
            args.repeats,
            args.chunk_size,
            threads=args.threads,
            in_process=not args.no_in_process,
        )
    else:
        report = batch_benchmark(args.records or 100_000, args.repeats, args.chunk_size)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
