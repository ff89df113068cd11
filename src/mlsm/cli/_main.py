"""The ``mlsm`` command.

Setup problems (a model file that does not import, an unreadable input, an unknown id field, an unusable store)
print one line and exit 2, with the traceback only under ``--debug``. Per-record problems are data in the results
and never change the exit status of a run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlsm._version import __version__
from mlsm.errors import MlsmError, RunStopped

if TYPE_CHECKING:
    from mlsm.lifecycle.project import ModelSource, ProjectSettings

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_STOPPED = 0, 1, 2, 3
DEFAULT_CHUNK_SIZE = 10_000
MODELS_HELP = "a .py file, a dotted module, or a project file (mlsm.toml)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_SETUP
    try:
        return int(args.handler(args))
    except RunStopped as exc:
        if args.debug:
            raise
        print(f"mlsm: stopped: {exc}", file=sys.stderr)
        return EXIT_STOPPED
    except MlsmError as exc:
        if args.debug:
            raise
        print(f"mlsm: error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except KeyboardInterrupt:
        print("mlsm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlsm", description="Run many versioned models against records.")
    parser.add_argument("--version", action="version", version=f"mlsm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for setup errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="score an input into a store (the batch job)")
    run.add_argument("models", metavar="MODELS", help=MODELS_HELP)
    run.add_argument(
        "input",
        metavar="INPUT",
        help="a CSV, JSON lines or Parquet file (by extension), or a directory or glob of them, read in name order",
    )
    run.add_argument(
        "--id-field", metavar="NAME", help="the field that identifies a record (default: the project's id_field)"
    )
    _store_argument(run)
    run.add_argument("--output", metavar="FILE.jsonl", help="also write each result document as a JSON line")
    run.add_argument("--rejects", metavar="FILE.jsonl", help="write rows that were not scored, with the reason")
    run.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=None,
        metavar="N",
        help=f"rows per chunk (default: the project's chunk_size, else {DEFAULT_CHUNK_SIZE})",
    )
    _release_arguments(run)
    run.add_argument("--run-id", metavar="NAME", help="name the run (default: generated and printed)")
    run.add_argument("--resume", action="store_true", help="continue run --run-id after its last committed chunk")
    run.add_argument(
        "--store-retry-seconds", type=float, default=60.0, metavar="S",
        help="keep retrying a failing store this long before stopping the run (default 60)",
    )  # fmt: skip
    run.add_argument(
        "--workers", type=_positive_int, default=1, metavar="N",
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

    models = commands.add_parser("models", help="list the models of a model source, and where each came from")
    models.add_argument("models", metavar="MODELS", help=MODELS_HELP)
    models.set_defaults(handler=_cmd_models)

    test = commands.add_parser("test", help="preflight every model on generated inputs (exit 1 on a failure)")
    test.add_argument("models", metavar="MODELS", help=MODELS_HELP)
    test.add_argument(
        "--examples", type=_positive_int, default=None, metavar="N", help="generated inputs per model (default 100)"
    )
    test.add_argument("--junit-xml", metavar="FILE", help="also write the results as JUnit XML (for CI servers)")
    test.add_argument("--seed", type=int, default=0, help="the seed of the generated inputs (default 0)")
    test.add_argument(
        "--extremes",
        action="store_true",
        help="also draw numbers of extreme magnitude for unbounded fields (int64 limits, float max, subnormals); "
        "default: |x| <= 1e9",
    )
    test.add_argument(
        "--time-budget",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="how long one record may take (default 1)",
    )
    test.add_argument(
        "--golden", metavar="DIR", help="the folder of golden files (default: golden/ beside each models file)"
    )
    test.add_argument(
        "--record-golden",
        action="store_true",
        help="write golden files from the models' current outputs instead of testing",
    )
    test.add_argument(
        "--golden-input", metavar="FILE", help="with --record-golden: take the inputs from this CSV/JSONL/Parquet file"
    )
    test.add_argument(
        "--golden-cases", type=_positive_int, default=20, metavar="N", help="cases to record per model (default 20)"
    )
    test.add_argument("--id-field", metavar="NAME", help="with --golden-input: the field that identifies a record")
    test.set_defaults(handler=_cmd_test)

    pin = commands.add_parser("pin", help="pin a git source of a project file to a tag or commit")
    pin.add_argument("project", metavar="PROJECT", help="the project file (mlsm.toml)")
    pin.add_argument("source", metavar="SOURCE", help="the git source's name (default: its repository's name)")
    where = pin.add_mutually_exclusive_group(required=True)
    where.add_argument("--tag", help="the release tag to pin")
    where.add_argument("--commit", help="the commit hash to pin")
    pin.set_defaults(handler=_cmd_pin)

    results = commands.add_parser("results", help="print the stored documents of an id as JSON lines")
    results.add_argument("id", metavar="ID")
    _store_argument(results)
    results.add_argument("--history", action="store_true", help="every document of the id, newest first")
    results.set_defaults(handler=_cmd_results)

    export = commands.add_parser("export", help="write the store's current results to .jsonl, .csv or .parquet")
    _store_argument(export)
    export.add_argument("--output", required=True, metavar="FILE", help="the file to write; format by extension")
    export.add_argument("--model", metavar="NAME@VERSION", help="only this model's current results")
    export.set_defaults(handler=_cmd_export)

    runs = commands.add_parser("runs", help="print every run of a store as JSON lines (oldest first)")
    _store_argument(runs)
    runs.set_defaults(handler=_cmd_runs)

    compare = commands.add_parser("compare", help="compare two models' current results on the ids both have")
    _store_argument(compare)
    compare.add_argument("a", metavar="A@VERSION")
    compare.add_argument("b", metavar="B@VERSION")
    compare.add_argument("--key", default="score", help="the result key to compare (default: score)")
    compare.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    compare.set_defaults(handler=_cmd_compare)

    from mlsm.cli._outcomes import add_outcomes_parser

    add_outcomes_parser(commands, _store_argument, _positive_int)

    from mlsm.cli._evaluate import add_evaluate_parser

    add_evaluate_parser(commands, _store_argument)

    serve = commands.add_parser(
        "serve",
        help="score records over HTTP and store every result (real time)",
        description="Options given here win over a project file's [service] table ([defaults] for --id-field "
        "and --store), which wins over the defaults shown.",
    )
    serve.add_argument("models", metavar="MODELS", help=MODELS_HELP)
    serve.add_argument(
        "--id-field", metavar="NAME", help="the field that identifies a record (default: the project's id_field)"
    )
    _store_argument(serve)
    serve.add_argument(
        "--host",
        default=None,
        help="address to listen on (default: 127.0.0.1 without an API key, 0.0.0.0 with one)",
    )
    serve.add_argument("--port", type=_port, default=None, help="TCP port (default 8000; 0 picks a free one)")
    serve.add_argument("--workers", type=_positive_int, default=None, metavar="N", help="worker processes (default 1)")
    serve.add_argument(
        "--api-key-file",
        metavar="PATH",
        help="file of scoring keys, one per line, re-read on reload (else $MLSM_API_KEY; none: no auth)",
    )
    serve.add_argument(
        "--admin-key-file",
        metavar="PATH",
        help="file of admin keys for /v1/admin/..., re-read on reload (else $MLSM_ADMIN_KEY; none: loopback only)",
    )
    serve.add_argument(
        "--max-body",
        type=_size,
        default=None,
        metavar="SIZE",
        help="largest request body, e.g. 10MiB, 512KiB, 1000000 (default 10MiB)",
    )
    serve.add_argument(
        "--max-records", type=_positive_int, default=None, metavar="N", help="records per request at most (10000)"
    )
    serve.add_argument(
        "--max-connections",
        type=_positive_int,
        default=None,
        metavar="N",
        help="open connections per worker; at the cap the longest-idle one is closed, else 503 (1000)",
    )
    serve.add_argument(
        "--max-header", type=_size, default=None, metavar="SIZE", help="largest request line + headers (64KiB)"
    )
    serve.add_argument(
        "--header-timeout", type=_seconds, default=None, metavar="S", help="time for a request's headers to arrive (10)"
    )
    serve.add_argument(
        "--body-timeout", type=_seconds, default=None, metavar="S", help="time for a request's body to arrive (60)"
    )
    serve.add_argument(
        "--keep-alive-timeout", type=_seconds, default=None, metavar="S", help="close idle connections after S (5)"
    )
    serve.add_argument(
        "--model-timeout", type=_seconds, default=None, metavar="S", help="cut off a model call after S seconds (5)"
    )
    serve.add_argument(
        "--batch-max-size", type=_positive_int, default=None, metavar="N", help="records per grouped call (64)"
    )
    serve.add_argument(
        "--batch-max-wait-ms",
        type=_milliseconds,
        default=None,
        metavar="MS",
        help="longest a record waits to be grouped while a group is scored (5)",
    )
    serve.add_argument(
        "--queue-size", type=_positive_int, default=None, metavar="N", help="result documents queued at most (10000)"
    )
    serve.add_argument(
        "--queue-wait-ms",
        type=_milliseconds,
        default=None,
        metavar="MS",
        help="how long a request waits for room in a full queue before 503 (250)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="SIGTERM: wait for in-flight requests (30)",
    )
    serve.add_argument(
        "--reload-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="longest loading the models (import + preflight) may take, at start or reload (120)",
    )
    _release_arguments(serve)
    serve.add_argument("--run-id", metavar="NAME", help="name the service's run (default: serve-<time>-<random>)")
    serve.add_argument("--no-access-log", action="store_true", help="no log line per request")
    serve.add_argument(
        "--strict-preflight",
        action="store_true",
        help="refuse the models (at start and on reload) when any model fails any preflight check, drafts included "
        "(default: only an active model failing its basic example or every input, or unstorable on most)",
    )
    serve.set_defaults(handler=_cmd_serve)

    demo = commands.add_parser(
        "demo", help="score 100,000 synthetic leads with the example models, judge them on their outcomes, report"
    )
    demo.add_argument("--records", type=_positive_int, default=100_000, metavar="N")
    _store_argument(demo)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=_cmd_demo)

    for sub in (run, models, test, pin, results, export, runs, compare, serve, demo):
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def _store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="sqlite:///file.db (default: $MLSM_STORE or sqlite:///mlsm.db), postgresql://..., mongodb://host/db",
    )


def _release_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-unreleased",
        action="store_true",
        help="run active models from unreleased code (a non-release branch, a dirty tree); recorded in the run "
        "(mlsm serve: also allows reloading them)",
    )
    parser.add_argument(
        "--release-branches",
        metavar="PATTERNS",
        help="comma-separated release branch patterns (default: the project's, else main,master,release/*)",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected 0-65535, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of milliseconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more milliseconds, got {text}")
    return value


def _size(text: str) -> int:
    from mlsm.service.settings import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- commands ------------------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from mlsm.lifecycle.prepare import ReleaseGate, prepare
    from mlsm.runs import RunOptions, check_run_files, format_summary, run_batch
    from mlsm.runs._processes import EngineSource
    from mlsm.stores import default_store_url, open_store

    if args.ray_address and args.executor != "ray":
        raise MlsmError("--ray-address needs --executor ray")
    if args.executor == "ray":
        from mlsm.runs._ray import require_ray

        require_ray()
    prepared = prepare(args.models, ReleaseGate(_release_branches(args), allow_unreleased=args.allow_unreleased))
    settings, engine, provenance = prepared.model_set.settings, prepared.engine, prepared.provenance
    _warn_unreleased(provenance)
    id_field = _id_field(args, settings)
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
            info={"source": args.models, "store": store.url, "provenance": provenance, "executor": args.executor},
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


def _release_branches(args: argparse.Namespace) -> tuple[str, ...] | None:
    """``--release-branches`` as patterns (they replace the project's ``[release]`` branches, whose tags rule stays);
    None when not given."""
    from mlsm.lifecycle.release import parse_patterns

    return parse_patterns(args.release_branches) if args.release_branches else None


def _warn_unreleased(provenance: dict[str, Any]) -> None:
    from mlsm.lifecycle.release import unreleased_warning

    warning = unreleased_warning(provenance)
    if warning:
        print(f"mlsm: warning: {warning}", file=sys.stderr)


def _announce(run_id: str, resumed_at: int) -> None:
    where = f" from input row {resumed_at + 1:,}" if resumed_at else ""
    print(f"mlsm: run {run_id}{' resuming' + where if resumed_at else ''}", file=sys.stderr)


def _check_input_early(path: str, id_field: str, fields: list[str]) -> None:
    """Fail on an unreadable input, an unknown id field or a header naming a column the run reads twice, before
    touching the store."""
    from mlsm.readers import open_inputs

    open_inputs(path, id_field=id_field, fields=fields)


def _resume_command(args: argparse.Namespace) -> str:
    argv = [a for a in sys.argv[1:] if a != "--resume"]
    if args.run_id is None:
        return "mlsm " + " ".join(shlex.quote(a) for a in argv) + " --run-id <RUN ID> --resume"
    return "mlsm " + " ".join(shlex.quote(a) for a in argv) + " --resume"


def _cmd_models(args: argparse.Namespace) -> int:
    from mlsm.engine import Engine
    from mlsm.fields import as_field
    from mlsm.lifecycle.project import load_model_set
    from mlsm.lifecycle.provenance import collect_provenance

    model_set = load_model_set(args.models)
    engine = Engine(model_set.models)
    provenance = collect_provenance(model_set.models, default_files=model_set.files())["models"]
    rows = [("NAME", "VERSION", "STATUS", "KIND", "BATCH", "ORIGIN", "FIELDS")]
    for model in engine.all_models:
        fields = ", ".join(f"{name}: {as_field(spec).describe()}" for name, spec in model.fields.items())
        origin = _origin(model_set.source_of(model), provenance[model.key])
        rows.append(
            (
                model.name,
                str(model.version),
                model.status,
                model.kind,
                "yes" if model.scores_frames else "no",
                origin,
                fields or "-",
            )
        )
    _print_table(rows)
    return EXIT_OK


def _origin(source: ModelSource, entry: dict[str, Any]) -> str:
    """``models.py [develop 3f2a9c1 dirty]``: a source's label and the git state of the model's file."""
    git = entry.get("git")
    if source.kind == "git" or not git:
        return source.label
    if git.get("error"):
        return f"{source.label} [git: {git['error']}]"
    if git.get("commit") is None:
        return f"{source.label} [git: no commits]"
    state = [git.get("branch") or "detached", git["commit"][:7], *git.get("tags", [])]
    if git.get("dirty") or not entry.get("tracked", True):
        state.append("dirty" if git.get("dirty") else "untracked")
    return f"{source.label} [{' '.join(state)}]"


def _cmd_test(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlsm.errors import MlsmError
    from mlsm.lifecycle.junit import write_junit
    from mlsm.lifecycle.preflight import DEFAULT_TIME_BUDGET
    from mlsm.lifecycle.project import load_model_set
    from mlsm.lifecycle.suite import check_model_set, describe_failure, junit_cases, record_model_set

    model_set = load_model_set(args.models)
    golden_dir = Path(args.golden) if args.golden else None
    if args.record_golden:
        recorded = record_model_set(
            model_set,
            cases=args.golden_cases,
            seed=args.seed,
            golden_dir=golden_dir,
            input_path=args.golden_input,
            id_field=args.id_field,
        )
        _print_table([("MODEL", "CASES", "SKIPPED", "FILE"), *recorded])
        print("\nskipped: inputs on which the model gave an error (they are not recorded)")
        return EXIT_OK
    if args.golden_input:
        raise MlsmError("--golden-input only applies with --record-golden")
    checks = check_model_set(
        model_set,
        examples=args.examples,
        seed=args.seed,
        time_budget=args.time_budget or DEFAULT_TIME_BUDGET,
        golden_dir=golden_dir,
        extremes=args.extremes,
    )
    rows = [("MODEL", "STATUS", "RESULT", "EXAMPLES", "FAILING", "SLOWEST", "GOLDEN", "DETAIL")]
    for check in checks:
        report, failures = check.preflight, check.failures
        slowest = "-" if report.slowest is None else f"{max(report.slowest * 1000, 0.1):,.1f} ms"
        detail = failures[0].describe()[:160] if failures else ""
        rows.append(
            (
                check.model.key,
                check.model.status,
                check.verdict,
                str(report.examples),
                str(report.failing),
                slowest,
                check.golden_summary,
                detail,
            )
        )
    _print_table(rows)
    failed = [check for check in checks if not check.passed]
    for check in failed:
        print(f"\n{check.model.key} FAILED ({check.source}): {check.preflight.outcome}")
        print(f"  {check.deploy}")
        for failure in check.failures:
            print("  " + describe_failure(failure).replace("\n", "\n  "))
    if args.junit_xml:
        write_junit(Path(args.junit_xml), junit_cases(checks))
    blocking = sum(1 for check in failed if check.blocking)
    blocks = f"; {blocking} would block a deploy (mlsm serve refuses them)" if blocking else ""
    print(f"\n{len(checks) - len(failed)} of {len(checks)} models passed{blocks}")
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_pin(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlsm.lifecycle.project import pin_source

    old, new = pin_source(Path(args.project), args.source, tag=args.tag, commit=args.commit)
    keys = ", ".join(model.key for model in new.models)
    print(f"pinned {args.source} to {new.label.rsplit(' @ ', 1)[-1]} (was {old}) in {args.project}: {keys}")
    return EXIT_OK


def _cmd_results(args: argparse.Namespace) -> int:
    from mlsm.documents import encode
    from mlsm.ids import normalize_id
    from mlsm.stores import open_store
    from mlsm.stores.base import redact_url

    id_value = normalize_id(args.id)  # the rule the id was stored by
    with open_store(args.store, mode="read") as store:
        documents: list[dict[str, Any]]
        if args.history:
            documents = store.history(id_value)
        else:
            found = store.current(id_value)
            documents = [found] if found else []
    if not documents:
        print(f"mlsm: no results for id {id_value!r} in {redact_url(store.url)}", file=sys.stderr)
        return EXIT_FAILED
    for document in documents:
        print(encode(document))
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from mlsm.stores import open_store
    from mlsm.stores.export import export_results

    with open_store(args.store, mode="read") as store:
        count = export_results(store, args.output, model=args.model)
    narrowed = f" of {args.model}" if args.model else ""
    print(f"mlsm: exported the current results{narrowed} of {count:,} ids to {args.output}", file=sys.stderr)
    return EXIT_OK


def _cmd_runs(args: argparse.Namespace) -> int:
    from mlsm.stores import open_store

    with open_store(args.store, mode="read") as store:
        for run in store.list_runs():
            line = {
                "id": run.id,
                "start": _iso(run.started),
                "end": _iso(run.ended),
                "status": run.status,
                "rows": run.rows,
                "chunks": run.chunks,
                "counts": run.counts,
                "info": run.info,
            }
            print(json.dumps(line, ensure_ascii=False))
    return EXIT_OK


def _iso(stamp: float | None) -> str | None:
    import datetime

    if stamp is None:
        return None
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _cmd_compare(args: argparse.Namespace) -> int:
    from mlsm.evaluation.compare import compare_models
    from mlsm.stores import open_store

    with open_store(args.store, mode="read") as store:
        result = compare_models(store, args.a, args.b, key=args.key)
    print(json.dumps(result.to_dict()) if args.json else result.table())
    return EXIT_OK


#: ``mlsm serve`` flags and the ``ServiceSettings`` field each one sets.
_SERVE_FLAGS = {
    "host": "host",
    "port": "port",
    "workers": "workers",
    "max_body": "max_body_bytes",
    "max_records": "max_records",
    "max_connections": "max_connections",
    "max_header": "max_header_bytes",
    "header_timeout": "header_timeout",
    "body_timeout": "body_timeout",
    "keep_alive_timeout": "keep_alive_timeout",
    "model_timeout": "model_timeout",
    "batch_max_size": "batch_max_size",
    "batch_max_wait_ms": "batch_max_wait_ms",
    "queue_size": "queue_size",
    "queue_wait_ms": "queue_wait_ms",
    "shutdown_timeout": "shutdown_timeout",
    "reload_timeout": "reload_timeout",
    "run_id": "run_id",
}


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MlsmError(
            f"mlsm serve needs the service extra ({exc.name} is missing): pip install 'mlsm[service]'"
        ) from None
    from mlsm.service.server import serve

    settings, sources = _serve_settings(args)
    return serve(settings, key_source=sources["api"], admin_key_source=sources["admin"])


def _serve_settings(args: argparse.Namespace) -> tuple[Any, dict[str, str | None]]:
    """``mlsm serve``'s settings: flags, else the project's ``[service]``/``[defaults]``, else the defaults; and
    where the scoring (``api``) and ``admin`` keys came from."""
    from pathlib import Path

    from mlsm.lifecycle.project import ProjectSettings, is_project_file, read_project_settings
    from mlsm.lifecycle.release import parse_patterns
    from mlsm.service.keys import ADMIN, SCORING, read_keys
    from mlsm.service.settings import ServiceSettings, project_service_options

    project, options = ProjectSettings(), {}
    if is_project_file(args.models):
        path = Path(args.models)
        project = read_project_settings(path)
        options = project_service_options(project.service, f"{path}: [service]", path.resolve().parent)
    sources: dict[str, str | None] = {}
    for scope, name, flag in ((SCORING, "api", args.api_key_file), (ADMIN, "admin", args.admin_key_file)):
        in_project = options.pop(f"{name}_key_file", None)
        key_file = flag if flag is not None else in_project
        keys, sources[name] = read_keys(scope, key_file)
        if flag is None and in_project is not None:
            sources[name] = f"{args.models} [service] {name}_key_file ({in_project})"
        options[f"{name}_keys"], options[f"{name}_key_file"] = keys, key_file
    for flag, name in _SERVE_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            options[name] = value
    if args.no_access_log:
        options["access_log"] = False
    if args.strict_preflight:
        options["strict_preflight"] = True
    settings = ServiceSettings(
        models=args.models,
        id_field=_id_field(args, project),
        store=args.store or project.store,
        allow_unreleased=args.allow_unreleased,
        release_branches=parse_patterns(args.release_branches) if args.release_branches else None,
        **options,
    )
    return settings, sources


def _id_field(args: argparse.Namespace, project: ProjectSettings) -> str:
    """``--id-field``, else the project's ``[defaults] id_field``; ``InputError`` when neither says."""
    from mlsm.errors import InputError

    id_field: str | None = args.id_field or project.id_field
    if not id_field:
        raise InputError("no id field: pass --id-field NAME (or set id_field in the project's [defaults])")
    return id_field


def _cmd_demo(args: argparse.Namespace) -> int:
    from mlsm.demo import run_demo

    run_demo(records=args.records, store_url=args.store, seed=args.seed)
    return EXIT_OK


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
