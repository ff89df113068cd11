"""``mlsm outcomes load FILE --store URL --id-field NAME --outcome COLUMN [--at COLUMN] [--positive VALUE ...]
[--rejects FILE]``: load what happened to the leads, for the point-in-time join (:mod:`mlsm.evaluation.outcomes`).

Rejected lines (no id, a bad outcome, a bad time) are counted, listed in the summary and written to ``--rejects``;
the load goes on. Setup problems (no such file or column, an unusable store) are one line and exit 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlsm.cli._common import add_command, positive_int, store_argument

__all__ = ["add_parsers", "run_outcomes"]


def add_parsers(commands: Any) -> None:
    """Add ``outcomes`` (with its ``load`` command) to the subcommands ``commands``."""
    outcomes = add_command(commands, "outcomes", help="load outcomes (did the lead convert) for evaluation")
    actions = outcomes.add_subparsers(dest="outcomes_command", metavar="ACTION", required=True)
    load = actions.add_parser(
        "load",
        help="load outcomes from a CSV, JSON lines or Parquet file (one current outcome per id)",
        description="Outcome values: 0/1, true/false, yes/no (any case), or with --positive the labels meaning 1 "
        "(others 0). --at: ISO 8601 (UTC without a zone) or unix seconds; without it, the time of the load. "
        "Loading an id again replaces its outcome; every loaded outcome is kept as history.",
    )
    load.add_argument("file", metavar="FILE", help="a CSV, JSON lines or Parquet file, or a directory or glob")
    store_argument(load)
    load.add_argument("--id-field", required=True, metavar="NAME", help="the column holding the lead's id")
    load.add_argument("--outcome", required=True, metavar="COLUMN", help="the column holding the outcome")
    load.add_argument("--at", metavar="COLUMN", help="the column holding the decision time (default: now)")
    load.add_argument(
        "--positive", nargs="+", action="extend", metavar="VALUE", help="outcome values that mean 1 (others mean 0)"
    )
    load.add_argument("--rejects", metavar="FILE.jsonl", help="write rejected lines there, with the reason")
    load.add_argument("--chunk-size", type=positive_int, default=10_000, metavar="N", help="lines per transaction")
    load.set_defaults(handler=run_outcomes)


def run_outcomes(args: argparse.Namespace) -> int:
    """Run ``mlsm outcomes load``; the exit status."""
    import contextlib
    import sys

    from mlsm.evaluation.outcomes import load_outcomes, open_outcome_input
    from mlsm.runs import check_run_files
    from mlsm.stores import open_store

    # an unreadable file or a missing column before the store or the rejects file is touched
    open_outcome_input(args.file, id_field=args.id_field, outcome=args.outcome, at=args.at)
    check_run_files(args.file, output=None, rejects=args.rejects, store_url=args.store)
    with open_store(args.store) as store, contextlib.ExitStack() as files:
        rejects = files.enter_context(open(args.rejects, "w", encoding="utf-8")) if args.rejects else None
        summary = load_outcomes(
            store,
            args.file,
            id_field=args.id_field,
            outcome=args.outcome,
            at=args.at,
            positive=args.positive,
            rejects=rejects,
            chunk_size=args.chunk_size,
        )
    print(summary.line())
    if summary.rejected and not args.rejects:
        print("mlsm: add --rejects FILE to keep the rejected lines with their reasons", file=sys.stderr)
    return 0
