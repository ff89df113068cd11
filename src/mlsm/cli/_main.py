"""The ``mlsm`` command: the parser built from one module per group of commands, and the exit statuses.

Setup problems (a model file that does not import, an unreadable input, an unknown id field, an unusable store)
print one line and exit 2, with the traceback only under ``--debug``. Per-record problems are data in the results
and never change the exit status of a run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlsm._version import __version__
from mlsm.cli import _drift, _evaluate, _models, _outcomes, _results, _run, _serve
from mlsm.cli._common import EXIT_OK, EXIT_SETUP, EXIT_STOPPED
from mlsm.errors import MlsmError, RunStopped

__all__ = ["main"]


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
    for group in (_run, _models, _results, _outcomes, _evaluate, _drift, _serve):
        group.add_parsers(commands)
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
