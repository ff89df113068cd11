"""``mlsm evaluate`` and ``mlsm report``: the store's scores joined to the outcomes as they were at decision time,
judged per model and compared per pair (:mod:`mlsm.evaluation.evaluate`), as a table, JSON, or the HTML report."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

__all__ = ["add_evaluate_parser", "join_arguments", "run_evaluate"]


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


def add_evaluate_parser(commands: Any, store_argument: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``evaluate`` to the subcommands ``commands``."""
    evaluate = commands.add_parser(
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


def joined_from(args: argparse.Namespace) -> Any:
    """Open the store for reading and join its outcomes as the options say; InputError on a bad option."""
    from mlsm.errors import InputError
    from mlsm.evaluation.join import join_outcomes
    from mlsm.evaluation.outcomes import parse_at
    from mlsm.stores import open_store

    bounds = {}
    for name in ("since", "until"):
        text = getattr(args, name)
        if text is None:
            continue
        try:
            bounds[name] = parse_at(text)
        except (InputError, ValueError) as exc:
            raise InputError(f"--{name} {text!r}: {exc}") from None
    if args.mature_days is not None and not args.mature_days >= 0:
        raise InputError(f"--mature-days {args.mature_days}: give a number of days >= 0")
    with open_store(args.store, mode="read") as store:
        return join_outcomes(
            store, as_of=args.as_of, key=args.key, models=args.models, mature_days=args.mature_days, **bounds
        )


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
