"""``mlsm evaluate`` and ``mlsm report``: the store's scores joined to the outcomes as they were at decision time,
judged per model and compared per pair (:mod:`mlsm.evaluation.evaluate`), as a table, JSON, or the HTML report."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlsm.cli._common import add_command, store_argument

__all__ = [
    "add_parsers",
    "drift_arguments",
    "join_arguments",
    "join_options",
    "joined_from",
    "run_evaluate",
    "run_report",
]


def join_arguments(parser: argparse.ArgumentParser) -> None:
    """The point-in-time join's options, shared by ``evaluate`` and ``report``."""
    parser.add_argument(
        "--model", dest="models", action="append", metavar="NAME@VER", help="a model to evaluate (repeat; default: "
        "every model with a numeric KEY in the joined documents)",
    )  # fmt: skip
    parser.add_argument("--key", default="score", help="the result key holding the score (default: score)")
    parser.add_argument(
        "--as-of", choices=("decision", "first", "latest"), default="decision",
        help="which score counts: the newest written at or before the decision (default), the first, the current",
    )  # fmt: skip
    parser.add_argument("--since", metavar="TIME", help="only outcomes decided at or after TIME (ISO 8601 or unix s)")
    parser.add_argument("--until", metavar="TIME", help="only outcomes decided before TIME (ISO 8601 or unix s)")
    parser.add_argument(
        "--mature-days", type=float, metavar="N", help="judge only decisions at least N days old (leave the young out)"
    )


def add_parsers(commands: Any) -> None:
    """Add ``evaluate`` and ``report`` to the subcommands ``commands``."""
    evaluate = add_command(
        commands,
        "evaluate",
        help="judge every model against the outcomes, compare champion and challenger",
        description="Each outcome is joined to the score each model had for that lead (--as-of). Per model: AUC "
        "with its 95%% CI (DeLong), KS, Brier, log loss, calibration, deciles; per pair, over the leads both "
        "scored: the AUC difference, its paired DeLong p-value, the top-decile swap set, and a verdict.",
    )
    store_argument(evaluate)
    join_arguments(evaluate)
    evaluate.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    evaluate.set_defaults(handler=run_evaluate)

    report = add_command(
        commands,
        "report",
        help="write the evaluation report: one self-contained HTML page (runs, scores, outcomes, drift)",
        description="Runs over time, each model's score distribution and, with outcomes, ROC curves, gain and lift "
        "by decile, calibration, champion vs challenger with the verdict and the swap set; with --reference and "
        "--current, the drift table. The page loads nothing from the network.",
    )
    store_argument(report)
    report.add_argument("--output", "-o", required=True, metavar="FILE.html", help="where to write the page")
    report.add_argument("--title", default="Lead scoring report", help="the page's title")
    join_arguments(report)
    drift_arguments(report)
    report.set_defaults(handler=run_report)


def drift_arguments(parser: argparse.ArgumentParser) -> None:
    """The runs the report's drift table compares (both or neither)."""
    parser.add_argument("--reference", metavar="RUN", help="the run whose inputs and scores are the reference")
    parser.add_argument("--current", metavar="RUN", help="the run compared with the reference")


def join_options(args: argparse.Namespace) -> dict[str, Any]:
    """The join's options from the command line (times parsed); InputError naming a bad one."""
    from mlsm.errors import InputError
    from mlsm.evaluation.outcomes import parse_at

    options: dict[str, Any] = {"as_of": args.as_of, "key": args.key, "models": args.models}
    for name in ("since", "until"):
        text = getattr(args, name)
        if text is None:
            continue
        try:
            options[name] = parse_at(text)
        except (InputError, ValueError) as exc:
            raise InputError(f"--{name} {text!r}: {exc}") from None
    if args.mature_days is not None and not args.mature_days >= 0:
        raise InputError(f"--mature-days {args.mature_days}: give a number of days >= 0")
    options["mature_days"] = args.mature_days
    return options


def joined_from(args: argparse.Namespace) -> Any:
    """Open the store for reading and join its outcomes as the options say; InputError on a bad option."""
    from mlsm.evaluation.join import join_outcomes
    from mlsm.stores import open_store

    options = join_options(args)
    with open_store(args.store, mode="read") as store:
        return join_outcomes(store, **options)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``mlsm evaluate``; the exit status (0, or 2 with one line when nothing can be evaluated)."""
    from mlsm.errors import InputError
    from mlsm.evaluation.evaluate import evaluate_joined

    joined = joined_from(args)
    if not joined.outcomes and not joined.too_young:
        raise InputError("the store has no outcomes in this selection: load them with mlsm outcomes load")
    result = evaluate_joined(joined, args.models)
    print(json.dumps(result.to_dict(), allow_nan=False) if args.json else result.table())
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Run ``mlsm report``: write the page, print its path; exit 2 with one line on a setup problem."""
    from pathlib import Path

    from mlsm.errors import InputError
    from mlsm.evaluation._assemble import report_page

    output = Path(args.output)
    if output.is_dir() or not output.parent.is_dir():
        raise InputError(f"--output {args.output}: give a file in an existing folder")
    if bool(args.reference) != bool(args.current):
        raise InputError("give both --reference RUN and --current RUN for the drift table, or neither")
    options = join_options(args)
    page = report_page(args.store, reference=args.reference, current=args.current, title=args.title, **options)
    output.write_text(page, encoding="utf-8")
    print(f"report written to {output} ({len(page.encode()) / 1e6:.1f} MB)")
    return 0
