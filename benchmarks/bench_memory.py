"""Peak memory of a batch run against the input size: it must not grow with the input (streaming chunks).

    .venv/bin/python benchmarks/bench_memory.py [--sizes 50000,500000] [--repeats 3]

``mlsm run`` scores synthetic leads (the example's models) into SQLite; the peak resident memory of the process
(``wait4``'s ``ru_maxrss``) is reported for each input size, with the ratio largest/smallest (flat: about 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from timing import scratch  # benchmarks/timing.py: this folder is on the path of a script run from it

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lead_scoring"


def peak_rss_mb(args: list[str], cwd: Path) -> float:
    process = subprocess.Popen([sys.executable, "-m", "mlsm", *args], cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mlsm {' '.join(args)} failed")
    return usage.ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50000,500000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    # this process stays small: Linux reports a child's peak as at least its parent's size when it was forked
    subprocess.run(
        [sys.executable, "-c", "from mlsm.demo import example_dir, ensure_artifacts; ensure_artifacts(example_dir())"],
        check=True,
    )
    folder = scratch("mlsm-bench-memory-")
    report: dict[str, object] = {}
    peaks = {}
    for size in (int(s) for s in args.sizes.split(",")):
        data = folder / f"leads-{size}.csv"
        subprocess.run(
            [sys.executable, str(EXAMPLE / "leads.py"), str(size), str(data)], check=True, stdout=subprocess.DEVNULL
        )
        runs = []
        for i in range(args.repeats):
            command = ["run", str(EXAMPLE / "models.py"), str(data), "--id-field", "Prospect ID", "--no-progress"]
            command += ["--store", f"sqlite:///{folder / f'{size}-{i}.db'}", "--allow-unreleased"]
            runs.append(peak_rss_mb(command, folder))
        peaks[size] = statistics.median(runs)
        report[f"{size} leads"] = {"peak_rss_mb_median": round(peaks[size], 1), "runs": [round(r, 1) for r in runs]}
    sizes = sorted(peaks)
    report["ratio_largest_over_smallest"] = round(peaks[sizes[-1]] / peaks[sizes[0]], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
