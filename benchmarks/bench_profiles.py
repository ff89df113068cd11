"""Cost of drift profiles per value: what a batch run pays to profile each chunk of each column.

    .venv/bin/python benchmarks/bench_profiles.py [--chunk-size 10000] [--chunks 20] [--repeats 5]
    .venv/bin/python benchmarks/bench_profiles.py run [--rows 100000] [--repeats 5] [--workers 1]

``run``: the whole cost in a batch run: ``mlsm run`` of the lead-scoring example on generated leads, with profiles
and without (``MLSM_PROFILE=off``, a switch for this measurement only), alternately; medians of the runs' own
elapsed time (reading, scoring, storing: what ``--json`` reports) and of the whole command.

For numeric columns of several shapes and for text columns (from Python lists and from Arrow arrays), reported in
nanoseconds per value: profiling one chunk (``of``), merging the chunk's profile into the run's (``merge``), and for
scale a floor in the same run (numeric: ``np.sort`` of the chunk, the least an exact quantile would cost; text:
``collections.Counter`` of the list). The issue's budget: profiles at most 5% of a batch run doing ~25,000 rows/s,
i.e. ~2,000 ns per row for all fields together.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from timing import best  # noqa: E402  benchmarks/timing.py: this folder is on the path of a script run from it

from mlsm.evaluation._drift import CategoricalProfile, NumericProfile, merge_profiles  # noqa: E402


def numeric_columns(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    with_gaps = rng.integers(0, 100, n).astype(float)
    with_gaps[rng.random(n) < 0.05] = np.nan
    mixed = rng.normal(0, 1000, n)
    mixed[rng.random(n) < 0.2] = 0.0
    return {
        "normal(50, 10)": rng.normal(50, 10, n),
        "lognormal(3, 2)": rng.lognormal(3, 2, n),
        "integers 0-99, 5% NaN": with_gaps,
        "signed, 20% zeros": mixed,
        "probabilities": rng.beta(2, 5, n),
    }


def text_columns(n: int, rng: np.random.Generator) -> dict[str, list[str | None]]:
    few = [f"source {i}" for i in range(20)]
    many = [f"city {i}" for i in range(900)]
    return {
        "20 values, 3% null": [None if rng.random() < 0.03 else few[i] for i in rng.integers(0, 20, n)],
        "900 values": [many[i] for i in rng.zipf(1.3, n) % 900],
        "unique (truncated)": [f"user{i}@example.com" for i in rng.integers(0, 10**9, n)],
    }


def run_cost(argv: list[str]) -> None:
    """Time ``mlsm run`` of the example with and without profiles; print medians and the ratio."""
    import os
    import subprocess

    from timing import scratch

    parser = argparse.ArgumentParser(prog="bench_profiles.py run")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    folder = scratch("mlsm-bench-profiles-")
    example = ROOT / "examples" / "lead_scoring"
    leads = folder / "leads.csv"
    subprocess.run([sys.executable, str(example / "leads.py"), str(args.rows), str(leads)], check=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    def once(profile: bool, i: int) -> tuple[float, float]:
        store = folder / f"{'on' if profile else 'off'}-{i}.db"
        command = [sys.executable, "-m", "mlsm", "run", str(example / "models.py"), str(leads),
                   "--id-field", "Prospect ID", "--store", f"sqlite:///{store}", "--allow-unreleased", "--json",
                   "--workers", str(args.workers)]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(
            command, env={**env, "MLSM_PROFILE": "on" if profile else "off"}, capture_output=True, text=True
        )
        whole = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        summary = json.loads(done.stdout)
        has_profile = "profile" in summary["run"]["counts"]
        if has_profile != profile:
            raise SystemExit(f"expected a run {'with' if profile else 'without'} a profile")
        store.unlink()
        return summary["elapsed"], whole

    once(True, -1)  # warm the file cache and the compiled bytecode
    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for i in range(args.repeats):
        for profile in (False, True):
            times[profile].append(once(profile, i))
    print(f"mlsm run of the lead-scoring example, {args.rows:,} rows, --workers {args.workers}; medians of "
          f"{args.repeats} runs each, alternating")  # fmt: skip
    print(f"{'':12} {'run elapsed':>12} {'whole command':>14}")
    medians = {}
    for profile in (False, True):
        run = statistics.median(t[0] for t in times[profile])
        whole = statistics.median(t[1] for t in times[profile])
        medians[profile] = (run, whole)
        print(f"{'profiles' if profile else 'no profiles':12} {run:11.2f}s {whole:13.2f}s")
    for label, index in (("run elapsed", 0), ("whole command", 1)):
        print(f"cost of profiles ({label}): {medians[True][index] / medians[False][index] - 1:+.1%}")


def main() -> None:
    if sys.argv[1:2] == ["run"]:
        run_cost(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--chunks", type=int, default=20, help="chunks merged into one run profile")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, rng = args.chunk_size, np.random.default_rng(0)
    rows = []

    for name, column in numeric_columns(n * args.chunks, rng).items():
        parts = np.array_split(column, args.chunks)
        chunk = parts[0]
        profiles = [NumericProfile.of(p) for p in parts]
        merged = merge_profiles(profiles)
        of = best(lambda: NumericProfile.of(chunk), args.repeats)  # noqa: B023
        merge = best(lambda: merge_profiles(profiles), args.repeats) / args.chunks  # noqa: B023
        floor = best(lambda: np.sort(chunk), args.repeats)  # noqa: B023
        size = len(json.dumps(merged.to_json()))
        rows.append((f"numeric {name}", of, merge, floor, size, f"{merged.keys.size} bins"))

    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is a dependency of mlsm
        pa = None
    for name, values in text_columns(n * args.chunks, rng).items():
        parts = [values[i * n : (i + 1) * n] for i in range(args.chunks)]
        chunk = parts[0]
        profiles = [CategoricalProfile.of(p) for p in parts]
        merged = merge_profiles(profiles)
        of = best(lambda: CategoricalProfile.of(chunk), args.repeats)  # noqa: B023
        merge = best(lambda: merge_profiles(profiles), args.repeats) / args.chunks  # noqa: B023
        floor = best(lambda: Counter(chunk), args.repeats)  # noqa: B023
        size = len(json.dumps(merged.to_json()))
        rows.append((f"text {name}", of, merge, floor, size, f"{len(merged.counts)} kept"))
        if pa is not None:
            arrow = pa.array(chunk, type=pa.string())
            of = best(lambda: CategoricalProfile.of(arrow), args.repeats)  # noqa: B023
            rows.append((f"text {name} (Arrow)", of, merge, floor, size, ""))

    per_value = 1e9 / n
    print(f"chunks of {n:,} values, {args.chunks} chunks merged; ns per value (best of {args.repeats})")
    head = f"{'column':40} {'of':>8} {'merge':>8} {'floor':>8} {'of/floor':>9} {'JSON':>8}"
    print(head)
    print("-" * len(head))
    for label, of, merge, floor, size, note in rows:
        print(
            f"{label:40} {of * per_value:8.1f} {merge * per_value:8.1f} {floor * per_value:8.1f}"
            f" {of / floor:9.2f} {size:7,}B  {note}"
        )
    numeric = [of + merge for label, of, merge, *_ in rows if label.startswith("numeric")]
    print(f"\nnumeric median (of + merge): {statistics.median(numeric) * per_value:.1f} ns per value")


if __name__ == "__main__":
    main()
