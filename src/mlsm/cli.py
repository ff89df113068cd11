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
from typing import Any

from . import __version__
from .errors import MlsmError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_SETUP
    try:
        return int(args.handler(args))
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

    run = commands.add_parser("run", help="score an input file into a store (the batch job)")
    run.add_argument("models", metavar="MODELS", help="a .py file or dotted module with the models")
    run.add_argument("input", metavar="INPUT", help="CSV, JSON lines or Parquet, by extension")
    run.add_argument("--id-field", required=True, metavar="NAME", help="the field that identifies a record")
    _store_argument(run)
    run.add_argument("--output", metavar="FILE.jsonl", help="also write each result document as a JSON line")
    run.add_argument("--rejects", metavar="FILE.jsonl", help="write rows that were not scored, with the reason")
    run.add_argument(
        "--chunk-size", type=_positive_int, default=10_000, metavar="N", help="rows per chunk (default 10000)"
    )
    run.add_argument("--run-id", metavar="NAME", help="name the run (default: generated and printed)")
    run.add_argument("--resume", action="store_true", help="continue run --run-id after its last committed chunk")
    run.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.set_defaults(handler=_cmd_run)

    models = commands.add_parser("models", help="list the models of a model source")
    models.add_argument("models", metavar="MODELS")
    models.set_defaults(handler=_cmd_models)

    test = commands.add_parser("test", help="preflight every model on generated inputs (exit 1 on a failure)")
    test.add_argument("models", metavar="MODELS")
    test.add_argument("--examples", type=_positive_int, default=None, metavar="N", help="inputs per model")
    test.set_defaults(handler=_cmd_test)

    results = commands.add_parser("results", help="print the stored documents of an id as JSON lines")
    results.add_argument("id", metavar="ID")
    _store_argument(results)
    results.add_argument("--history", action="store_true", help="every document of the id, newest first")
    results.set_defaults(handler=_cmd_results)

    serve = commands.add_parser("serve", help="score records over HTTP and store every result (real time)")
    serve.add_argument("models", metavar="MODELS", help="a .py file or dotted module with the models")
    serve.add_argument("--id-field", required=True, metavar="NAME", help="the field that identifies a record")
    _store_argument(serve)
    serve.add_argument(
        "--host",
        default=None,
        help="address to listen on (default: 127.0.0.1 without an API key, 0.0.0.0 with one)",
    )
    serve.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    serve.add_argument("--workers", type=_positive_int, default=1, metavar="N", help="worker processes (default 1)")
    serve.add_argument(
        "--api-key-file", metavar="PATH", help="file holding the API key (else $MLSM_API_KEY; none: no auth)"
    )
    serve.add_argument(
        "--max-body",
        type=_size,
        default=10 * 1024 * 1024,
        metavar="SIZE",
        help="largest request body, e.g. 10MiB, 512KiB, 1000000 (default 10MiB)",
    )
    serve.add_argument(
        "--model-timeout", type=_seconds, default=5.0, metavar="S", help="cut off a model call after S seconds (5)"
    )
    serve.add_argument(
        "--batch-max-size", type=_positive_int, default=64, metavar="N", help="records per grouped call (64)"
    )
    serve.add_argument(
        "--batch-max-wait-ms",
        type=_milliseconds,
        default=5.0,
        metavar="MS",
        help="longest a record waits to be grouped while a group is scored (5)",
    )
    serve.add_argument(
        "--queue-size", type=_positive_int, default=10_000, metavar="N", help="result documents queued at most"
    )
    serve.add_argument(
        "--queue-wait-ms",
        type=_milliseconds,
        default=250.0,
        metavar="MS",
        help="how long a request waits for room in a full queue before 503 (250)",
    )
    serve.add_argument(
        "--shutdown-timeout", type=_seconds, default=30.0, metavar="S", help="SIGTERM: wait for in-flight requests"
    )
    serve.add_argument(
        "--reload-timeout",
        type=_seconds,
        default=120.0,
        metavar="S",
        help="longest loading the models (import + preflight) may take, at start or reload (120)",
    )
    serve.add_argument("--run-id", metavar="NAME", help="name the service's run (default: serve-<time>-<random>)")
    serve.add_argument("--no-access-log", action="store_true", help="no log line per request")
    serve.set_defaults(handler=_cmd_serve)

    demo = commands.add_parser("demo", help="score 100,000 synthetic leads with the example models")
    demo.add_argument("--records", type=_positive_int, default=100_000, metavar="N")
    _store_argument(demo)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=_cmd_demo)

    for sub in (run, models, test, results, serve, demo):
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def _store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="sqlite:///file.db (default: $MLSM_STORE or sqlite:///mlsm.db), postgresql://..., mongodb://host/db",
    )


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


_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def _size(text: str) -> int:
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"expected a size such as 10MiB, 512KiB or 1000000, got {text!r}")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte, got {text!r}")
    return value


# -- commands ------------------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .loader import load_models
    from .runner import RunOptions, format_summary, run_batch
    from .stores import open_store

    loaded = load_models(args.models)
    engine = Engine(loaded.models)
    _check_input_early(args.input, args.id_field)
    with open_store(args.store) as store:
        options = RunOptions(
            input=args.input,
            id_field=args.id_field,
            run_id=args.run_id,
            resume=args.resume,
            output=args.output,
            rejects=args.rejects,
            chunk_size=args.chunk_size,
            progress=False if args.no_progress or args.json else None,
            info={"source": args.models, "store": store.url},
            resume_command=_resume_command(args),
        )
        result = run_batch(engine, store, options, on_start=_announce if not args.json else None)
        if args.json:
            print(json.dumps({"run": result.run.to_dict(), "elapsed": result.elapsed, "scored": result.scored_now}))
        else:
            print(format_summary(result, engine, store_url=store.url, input_path=args.input))
    return EXIT_OK


def _announce(run_id: str, resumed_at: int) -> None:
    where = f" from input row {resumed_at + 1:,}" if resumed_at else ""
    print(f"mlsm: run {run_id}{' resuming' + where if resumed_at else ''}", file=sys.stderr)


def _check_input_early(path: str, id_field: str) -> None:
    """Fail on an unreadable input or unknown id field before touching the store."""
    from .readers import open_input

    open_input(path, id_field=id_field)


def _resume_command(args: argparse.Namespace) -> str:
    argv = [a for a in sys.argv[1:] if a != "--resume"]
    if args.run_id is None:
        return "mlsm " + " ".join(shlex.quote(a) for a in argv) + " --run-id <RUN ID> --resume"
    return "mlsm " + " ".join(shlex.quote(a) for a in argv) + " --resume"


def _cmd_models(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .fields import as_field
    from .loader import load_models

    loaded = load_models(args.models)
    engine = Engine(loaded.models)
    rows = [("NAME", "VERSION", "STATUS", "KIND", "BATCH", "FIELDS")]
    for model in engine.all_models:
        fields = ", ".join(f"{name}: {as_field(spec).describe()}" for name, spec in model.fields.items())
        rows.append(
            (model.name, str(model.version), model.status, model.kind, "yes" if model.batch else "no", fields or "-")
        )
    _print_table(rows)
    return EXIT_OK


def _cmd_test(args: argparse.Namespace) -> int:
    from .engine import Engine
    from .loader import load_models
    from .preflight import preflight_model

    loaded = load_models(args.models)
    engine = Engine(loaded.models)
    rows = [("MODEL", "STATUS", "RESULT", "EXAMPLES", "DETAIL")]
    failed = 0
    for model in engine.all_models:
        report = preflight_model(
            model, examples=args.examples, upstream=engine.all_models[: engine.all_models.index(model)]
        )
        failed += not report.passed
        detail = "" if report.passed else f"{len(report.failures)} failed; first: {report.first_failure}"
        rows.append((model.key, model.status, "pass" if report.passed else "FAIL", str(report.examples), detail[:200]))
    _print_table(rows)
    total = len(engine.all_models)
    print(f"\n{total - failed} of {total} models passed")
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_results(args: argparse.Namespace) -> int:
    from .stores import open_store

    with open_store(args.store) as store:
        documents: list[dict[str, Any]]
        if args.history:
            documents = store.history(args.id)
        else:
            found = store.current(args.id)
            documents = [found] if found else []
    if not documents:
        print(f"mlsm: no results for id {args.id!r} in {store.url}", file=sys.stderr)
        return EXIT_FAILED
    for document in documents:
        print(json.dumps(document, ensure_ascii=False))
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MlsmError(
            f"mlsm serve needs the service extra ({exc.name} is missing): pip install 'mlsm[service]'"
        ) from None
    from .service.server import serve
    from .service.settings import ServiceSettings, read_api_key

    key, key_source = read_api_key(args.api_key_file)
    settings = ServiceSettings(
        models=args.models,
        id_field=args.id_field,
        store=args.store,
        host=args.host,
        port=args.port,
        workers=args.workers,
        api_key=key,
        max_body_bytes=args.max_body,
        model_timeout=args.model_timeout,
        batch_max_size=args.batch_max_size,
        batch_max_wait_ms=args.batch_max_wait_ms,
        queue_size=args.queue_size,
        queue_wait_ms=args.queue_wait_ms,
        shutdown_timeout=args.shutdown_timeout,
        reload_timeout=args.reload_timeout,
        run_id=args.run_id,
        access_log=not args.no_access_log,
    )
    return serve(settings, key_source=key_source)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(records=args.records, store_url=args.store, seed=args.seed)
    return EXIT_OK


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
