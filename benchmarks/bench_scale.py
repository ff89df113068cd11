"""Scaling out on this machine: 1 process vs ``--workers 2`` vs ``--executor ray``, whole ``mlsm run`` commands.

    .venv/bin/python benchmarks/bench_scale.py [--repeats 3] [--records 40000] [--leads 100000] [--skip-ray]

(a) CPU-bound models (plain Python, a few hundred microseconds per record): ``--workers 2`` against 1 process,
    alternating runs; reported: the speed-up, median of the pair ratios (bar: >= 1.6 on 2 cores). Worker start-up
    (each worker imports mlsm and loads the models) is inside the run's time.
(b) The lead-scoring example (rules, logistic regression, gradient boosting, a draft challenger, a summary) on
    synthetic leads: records/s of 1 process, ``--workers 2`` and ``--executor ray --workers 2`` (a local Ray
    started by the run). Each figure is the median of the runs; "run" is the run's own elapsed time (scoring and
    storing), "wall" includes starting Python, loading the models and, for Ray, starting Ray.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from timing import scratch  # benchmarks/timing.py: this folder is on the path of a script run from it

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lead_scoring"

CPU_BOUND = """
import math
from mlsm import Field, Model, SummaryModel

WEIGHTS = [[math.sin(i * 7 + j) / 8 for j in range(6)] for i in range(160)]

def network(data, results):
    # a small neural network written out by hand: 6 inputs, 160 hidden units, one output
    x = [data["a"] / 1000, data["b"] / 100, data["c"], math.log1p(data["a"]), data["b"] % 7, 1.0]
    hidden = [math.tanh(sum(w * v for w, v in zip(row, x))) for row in WEIGHTS]
    return {"score": 1 / (1 + math.exp(-sum(hidden) / 10))}

def scorecard(data, results):
    points = sum(10 for i in range(400) if (data["a"] + i) % 11 < data["b"] % 11)
    return {"score": points / 4000}

FIELDS = {"a": Field(int, ge=0), "b": int, "c": float}
MODELS = [
    Model("network", FIELDS, "1", network, status="active"),
    Model("scorecard", FIELDS, "1", scorecard, status="active"),
    SummaryModel(
        "best", [{"name": "network", "version": "1"}, {"name": "scorecard", "version": "1"}], "1",
        lambda data, results: {"score": max(results[m]["1"]["score"] for m in ("network", "scorecard"))},
    ),
]
"""


def mlsm_run(args: list[str], cwd: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mlsm", "run", *args, "--json", "--allow-unreleased"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mlsm run failed: {done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall": wall, "run": report["elapsed"], "scored": report["scored"]}


def cpu_bound(folder: Path, records: int, repeats: int) -> dict[str, Any]:
    (folder / "cpu_models.py").write_text(CPU_BOUND)
    with open(folder / "cpu.csv", "w") as handle:
        handle.write("id,a,b,c\n")
        handle.writelines(f"{i},{i * 37 % 5000},{i % 97},{(i % 13) / 13}\n" for i in range(records))
    common = ["cpu_models.py", "cpu.csv", "--id-field", "id", "--chunk-size", "2000", "--no-progress"]
    one, two = [], []
    for i in range(repeats):
        one.append(mlsm_run([*common, "--store", f"sqlite:///cpu1-{i}.db"], folder))
        two.append(mlsm_run([*common, "--store", f"sqlite:///cpu2-{i}.db", "--workers", "2"], folder))
    ratios_run = [a["run"] / b["run"] for a, b in zip(one, two)]
    ratios_wall = [a["wall"] / b["wall"] for a, b in zip(one, two)]
    return {
        "records": records,
        "one_process_records_per_s": round(records / statistics.median(r["run"] for r in one)),
        "two_workers_records_per_s": round(records / statistics.median(r["run"] for r in two)),
        "speedup_run_median": round(statistics.median(ratios_run), 3),
        "speedup_wall_median": round(statistics.median(ratios_wall), 3),
        "bar": ">= 1.6 (run)",
        "pair_ratios_run": [round(r, 3) for r in ratios_run],
    }


def example(folder: Path, leads: int, repeats: int, ray: bool) -> dict[str, Any]:
    sys.path.insert(0, str(EXAMPLE))
    from leads import write_leads  # type: ignore[import-not-found]

    from mlsm.demo import ensure_artifacts

    ensure_artifacts(EXAMPLE)
    write_leads(folder / "leads.csv", leads, seed=13)
    models = str(EXAMPLE / "models.py")
    common = [models, "leads.csv", "--id-field", "Prospect ID", "--no-progress"]
    configurations = {"1 process": [], "--workers 2": ["--workers", "2"]}
    if ray:
        configurations["--executor ray --workers 2"] = ["--executor", "ray", "--workers", "2"]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in configurations}
    for i in range(repeats):
        for name, extra in configurations.items():
            store = f"sqlite:///example-{len(results[name])}-{name.replace(' ', '').replace('-', '')}-{i}.db"
            results[name].append(mlsm_run([*common, "--store", store, *extra], folder))
    report: dict[str, Any] = {"leads": leads}
    for name, runs in results.items():
        run, wall = statistics.median(r["run"] for r in runs), statistics.median(r["wall"] for r in runs)
        report[name] = {
            "records_per_s_run": round(leads / run),
            "records_per_s_wall": round(leads / wall),
            "run_s": round(run, 2),
            "wall_s": round(wall, 2),
            "overhead_s": round(wall - run, 2),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    folder = scratch("mlsm-bench-scale-")
    report = {
        "cpu_bound": cpu_bound(folder, args.records, args.repeats),
        "example": example(folder, args.leads, args.repeats, not args.skip_ray),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
