"""``mlsm drift``: how far a run's inputs and scores moved from a reference run's (PSI per field and per score)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlsm.cli._common import add_command, store_argument
from mlsm.errors import MlsmError

__all__ = ["add_parsers", "run_drift"]


def add_parsers(commands: Any) -> None:
    """Add ``drift`` to the subcommands ``commands``."""
    drift = add_command(commands, "drift", help="PSI of a run's input fields and scores against a reference run")
    store_argument(drift)
    drift.add_argument("--reference", required=True, metavar="RUN", help="the run to compare against (its deciles)")
    drift.add_argument("--current", required=True, metavar="RUN", help="the run to check")
    drift.add_argument("--watch", type=float, default=0.1, metavar="PSI", help="watch from this PSI on (default 0.1)")
    drift.add_argument("--act", type=float, default=0.25, metavar="PSI", help="act from this PSI on (default 0.25)")
    drift.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    drift.set_defaults(handler=run_drift)


def run_drift(args: argparse.Namespace) -> int:
    """Print the drift of ``--current`` from ``--reference``; setup problems raise ``MlsmError`` (exit 2)."""
    from mlsm.evaluation._drift import PsiThresholds
    from mlsm.evaluation.drift import drift_between_runs
    from mlsm.stores import open_store

    try:
        thresholds = PsiThresholds(args.watch, args.act)
    except ValueError as exc:
        raise MlsmError(f"--watch {args.watch:g} --act {args.act:g}: {exc}") from None
    with open_store(args.store, mode="read") as store:
        report = drift_between_runs(store, args.reference, args.current, thresholds)
    print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else report.table())
    return 0
