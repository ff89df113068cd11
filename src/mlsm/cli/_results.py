"""Reading a store: ``mlsm results`` (an id's documents), ``mlsm export`` (current results to a file),
``mlsm runs`` and ``mlsm compare`` (two models' current results side by side)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from mlsm.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    add_command,
    store_argument,
)

if TYPE_CHECKING:
    pass

__all__ = ["add_parsers"]


def add_parsers(commands: Any) -> None:
    """Add ``results``, ``export``, ``runs`` and ``compare`` to the subcommands ``commands``."""
    results = add_command(commands, "results", help="print the stored documents of an id as JSON lines")
    results.add_argument("id", metavar="ID")
    store_argument(results)
    results.add_argument("--history", action="store_true", help="every document of the id, newest first")
    results.set_defaults(handler=_cmd_results)

    export = add_command(commands, "export", help="write the store's current results to .jsonl, .csv or .parquet")
    store_argument(export)
    export.add_argument("--output", required=True, metavar="FILE", help="the file to write; format by extension")
    export.add_argument("--model", metavar="NAME@VERSION", help="only this model's current results")
    export.set_defaults(handler=_cmd_export)

    runs = add_command(commands, "runs", help="print every run of a store as JSON lines (oldest first)")
    store_argument(runs)
    runs.set_defaults(handler=_cmd_runs)

    compare = add_command(commands, "compare", help="compare two models' current results on the ids both have")
    store_argument(compare)
    compare.add_argument("a", metavar="A@VERSION")
    compare.add_argument("b", metavar="B@VERSION")
    compare.add_argument("--key", default="score", help="the result key to compare (default: score)")
    compare.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    compare.set_defaults(handler=_cmd_compare)


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
