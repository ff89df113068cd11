"""What the ``mlsm`` commands share: exit statuses, the ``--store`` and release options, argument types, tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlsm.lifecycle.project import ProjectSettings

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_SETUP",
    "EXIT_STOPPED",
    "MODELS_HELP",
    "add_command",
    "id_field_of",
    "positive_float",
    "positive_int",
    "print_table",
    "release_arguments",
    "release_branches",
    "store_argument",
    "warn_unreleased",
]

EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_STOPPED = 0, 1, 2, 3
DEFAULT_CHUNK_SIZE = 10_000
MODELS_HELP = "a .py file, a dotted module, or a project file (mlsm.toml)"


def add_command(commands: Any, name: str, **options: Any) -> argparse.ArgumentParser:
    """A subcommand's parser, with ``--debug`` accepted after the command too."""
    parser: argparse.ArgumentParser = commands.add_parser(name, **options)
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def store_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--store URL`` option."""
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="sqlite:///file.db (default: $MLSM_STORE or sqlite:///mlsm.db), postgresql://..., mongodb://host/db",
    )


def release_arguments(parser: argparse.ArgumentParser) -> None:
    """The draft rule's options: ``--allow-unreleased`` and ``--release-branches``."""
    parser.add_argument(
        "--allow-unreleased",
        action="store_true",
        help="run active models from unreleased code (a non-release branch, a dirty tree); recorded in the run",
    )
    parser.add_argument(
        "--release-branches",
        metavar="PATTERNS",
        help="comma-separated release branch patterns (default: the project's, else main,master,release/*)",
    )


def positive_float(text: str) -> float:
    """An argument type: a positive, finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def positive_int(text: str) -> int:
    """An argument type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Print ``rows`` (the first is the header) in aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def release_branches(args: argparse.Namespace) -> tuple[str, ...] | None:
    """``--release-branches`` as patterns (they replace the project's ``[release]`` branches, whose tags rule stays);
    None when not given."""
    from mlsm.lifecycle.release import parse_patterns

    return parse_patterns(args.release_branches) if args.release_branches else None


def warn_unreleased(provenance: dict[str, Any]) -> None:
    """Say on stderr when active models run from unreleased code."""
    from mlsm.lifecycle.release import unreleased_warning

    warning = unreleased_warning(provenance)
    if warning:
        print(f"mlsm: warning: {warning}", file=sys.stderr)


def id_field_of(args: argparse.Namespace, project: ProjectSettings) -> str:
    """``--id-field``, else the project's ``[defaults] id_field``; ``InputError`` when neither says."""
    from mlsm.errors import InputError

    id_field: str | None = args.id_field or project.id_field
    if not id_field:
        raise InputError("no id field: pass --id-field NAME (or set id_field in the project's [defaults])")
    return id_field
