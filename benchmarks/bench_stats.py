"""Evaluation statistics on a million leads, against scikit-learn's ``roc_auc_score`` timed in the same run.

    .venv/bin/python benchmarks/bench_stats.py [--rows 1000000] [--repeats 3]

Reported per statistic: seconds (best of the repeats) and the ratio to ``roc_auc_score`` on the same rows, for
continuous scores and for scores rounded to two decimals (ties everywhere: deciles then break ties by id text).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from timing import best  # noqa: E402  benchmarks/timing.py: this folder is on the path of a script run from it

from mlsm.evaluation import _stats as stats  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    n = args.rows
    y = rng.random(n) < 0.2
    signal = y * 1.0 + rng.normal(size=n)
    a = 1 / (1 + np.exp(-signal - rng.normal(size=n)))
    b = 1 / (1 + np.exp(-signal - rng.normal(scale=0.5, size=n)))
    ids = np.array([f"{i:032x}" for i in rng.integers(0, 2**62, n)])
    order = stats.IdOrder(ids)
    for label, s_a, s_b in (("continuous", a, b), ("rounded to 0.01", np.round(a, 2), np.round(b, 2))):
        floor = best(lambda: roc_auc_score(y, s_a), args.repeats)  # noqa: B023
        cases = {
            "auc": lambda: stats.auc(y, s_a),  # noqa: B023
            "delong": lambda: stats.delong(y, s_a),  # noqa: B023
            "paired_delong": lambda: stats.paired_delong(y, s_a, s_b),  # noqa: B023
            "ks": lambda: stats.ks(y, s_a),  # noqa: B023
            "calibration": lambda: stats.calibration(y, s_a),  # noqa: B023
            "roc_points": lambda: stats.roc_points(y, s_a),  # noqa: B023
            "deciles (ids)": lambda: stats.deciles(y, s_a, ids),  # noqa: B023
            "deciles (IdOrder)": lambda: stats.deciles(y, s_a, order),  # noqa: B023
            "swap_set (IdOrder)": lambda: stats.swap_set(y, s_a, s_b, order),  # noqa: B023
            "evaluate_model (IdOrder)": lambda: stats.evaluate_model(y, s_a, order),  # noqa: B023
            "evaluate_pair (IdOrder)": lambda: stats.evaluate_pair(y, s_a, s_b, order),  # noqa: B023
        }
        print(f"{n:,} rows, scores {label}: roc_auc_score {floor:.3f} s")
        for name, fn in cases.items():
            took = best(fn, args.repeats)
            print(f"  {name:26} {took:7.3f} s  {took / floor:5.2f}x roc_auc_score")
    took = best(lambda: stats.IdOrder(ids), 1)
    print(f"IdOrder of {n:,} ids (once per evaluation): {took:.3f} s")


if __name__ == "__main__":
    main()
