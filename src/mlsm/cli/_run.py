"""``mlsm run`` (the batch job: an input scored into a store, in this process, in worker processes or on Ray)
and ``mlsm demo``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import TYPE_CHECKING, Any

from mlsm.cli._common import (
    DEFAULT_CHUNK_SIZE,
    EXIT_OK,
    MODELS_HELP,
    add_command,
    id_field_of,
    positive_int,
    release_arguments,
    release_branches,
    store_argument,
    warn_unreleased,
)
from mlsm.errors import MlsmError

if TYPE_CHECKING:
    pass

__all__ = ["add_parsers"]


def add_parsers(commands: Any) -> None:
    """Add ``run`` and ``demo`` to the subcommands ``commands``."""
    run = add_command(commands, "run", help="score an input into a store (the batch job)")
    run.add_argument("models", metavar="MODELS", help=MODELS_HELP)
    run.add_argument(
        "input",
        metavar="INPUT",
        help="a CSV, JSON lines or Parquet file (by extension), or a directory or glob of them, read in name order",
    )
    run.add_argument(
        "--id-field", metavar="NAME", help="the field that identifies a record (default: the project's id_field)"
    )
    store_argument(run)
    run.add_argument("--output", metavar="FILE.jsonl", help="also write each result document as a JSON line")
    run.add_argument("--rejects", metavar="FILE.jsonl", help="write rows that were not scored, with the reason")
    run.add_argument(
        "--chunk-size",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"rows per chunk (default: the project's chunk_size, else {DEFAULT_CHUNK_SIZE})",
    )
    release_arguments(run)
    run.add_argument("--run-id", metavar="NAME", help="name the run (default: generated and printed)")
    run.add_argument("--resume", action="store_true", help="continue run --run-id after its last committed chunk")
    run.add_argument(
        "--store-retry-seconds", type=float, default=60.0, metavar="S",
        help="keep retrying a failing store this long before stopping the run (default 60)",
    )  # fmt: skip
    run.add_argument(
        "--workers", type=positive_int, default=1, metavar="N",
        help="score in N processes (local) or N actors (ray); default 1",
    )  # fmt: skip
    run.add_argument(
        "--executor", choices=("local", "ray"), default="local",
        help="local: this machine (in-process, or processes with --workers); ray: a Ray cluster (Ray Data)",
    )  # fmt: skip
    run.add_argument(
        "--ray-address", metavar="ADDR", default=None,
        help="the Ray cluster to join (default: start a local Ray); with --executor ray",
    )  # fmt: skip
    run.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.set_defaults(handler=_cmd_run)

    demo = add_command(
        commands,
        "demo",
        help="score 100,000 synthetic leads with the example models, judge them on their outcomes, report",
    )
    demo.add_argument("--records", type=positive_int, default=100_000, metavar="N")
    store_argument(demo)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=_cmd_demo)


def _cmd_run(args: argparse.Namespace) -> int:
    from mlsm.lifecycle.prepare import ReleaseGate, prepare
    from mlsm.runs import RunOptions, check_run_files, format_summary, run_batch
    from mlsm.runs._processes import EngineSource
    from mlsm.stores import default_store_url, open_store
    from mlsm.stores.base import hide_password

    if args.ray_address and args.executor != "ray":
        raise MlsmError("--ray-address needs --executor ray")
    if args.executor == "ray":
        from mlsm.runs._ray import require_ray

        require_ray()
    prepared = prepare(args.models, ReleaseGate(release_branches(args), allow_unreleased=args.allow_unreleased))
    settings, engine, provenance = prepared.model_set.settings, prepared.engine, prepared.provenance
    warn_unreleased(provenance)
    id_field = id_field_of(args, settings)
    if args.executor == "local":
        _check_input_early(args.input, id_field, engine.input_fields)
    store_url = args.store or settings.store or default_store_url()
    check_run_files(args.input, output=args.output, rejects=args.rejects, store_url=store_url)  # before any writing
    with open_store(store_url) as store:
        options = RunOptions(
            input=args.input,
            id_field=id_field,
            run_id=args.run_id,
            resume=args.resume,
            output=args.output,
            rejects=args.rejects,
            chunk_size=args.chunk_size or settings.chunk_size or DEFAULT_CHUNK_SIZE,
            retry_seconds=args.store_retry_seconds,
            progress=False if args.no_progress or args.json else None,
            info={
                "source": args.models,
                "store": hide_password(store.url),
                "provenance": provenance,
                "executor": args.executor,
            },
            resume_command=_resume_command(args),
            workers=args.workers,
            engine_source=EngineSource.of_run(args.models, engine, provenance),
        )
        on_start = _announce if not args.json else None
        if args.executor == "ray":
            from mlsm.runs._ray import run_on_ray

            result = run_on_ray(engine, store, options, address=args.ray_address, on_start=on_start)
        else:
            result = run_batch(engine, store, options, on_start=on_start)
        if args.json:
            print(json.dumps({"run": result.run.to_dict(), "elapsed": result.elapsed, "scored": result.scored_now}))
        else:
            print(format_summary(result, engine, store_url=store.url, input_path=args.input))
    return EXIT_OK


def _announce(run_id: str, resumed_at: int) -> None:
    where = f" from input row {resumed_at + 1:,}" if resumed_at else ""
    print(f"mlsm: run {run_id}{' resuming' + where if resumed_at else ''}", file=sys.stderr)


def _check_input_early(path: str, id_field: str, fields: list[str]) -> None:
    """Fail on an unreadable input, an unknown id field or a header naming a column the run reads twice, before
    touching the store."""
    from mlsm.readers import open_inputs

    open_inputs(path, id_field=id_field, fields=fields)


def _resume_command(args: argparse.Namespace) -> str:
    # a command to run, printed to whoever gave the store URL: as given (it is not stored)
    argv = [a for a in sys.argv[1:] if a != "--resume"]
    if args.run_id is None:
        return "mlsm " + " ".join(shlex.quote(a) for a in argv) + " --run-id <RUN ID> --resume"
    return "mlsm " + " ".join(shlex.quote(a) for a in argv) + " --resume"


def _cmd_demo(args: argparse.Namespace) -> int:
    from mlsm.demo import run_demo

    run_demo(records=args.records, store_url=args.store, seed=args.seed)
    return EXIT_OK
