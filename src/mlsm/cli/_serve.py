"""``mlsm serve``: the real-time service; its options are declared once by :mod:`mlsm.service.settings`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mlsm.cli._common import (
    MODELS_HELP,
    add_command,
    id_field_of,
)
from mlsm.errors import MlsmError

if TYPE_CHECKING:
    pass

__all__ = ["add_parsers"]


def add_parsers(commands: Any) -> None:
    """Add ``serve`` to the subcommands ``commands``."""
    from mlsm.service.settings import add_arguments as add_serve_arguments

    serve = add_command(
        commands,
        "serve",
        help="score records over HTTP and store every result (real time)",
        description="Options given here win over a project file's [service] table ([defaults] for --id-field "
        "and --store), which wins over the defaults shown.",
    )
    serve.add_argument("models", metavar="MODELS", help=MODELS_HELP)
    add_serve_arguments(serve)  # every option declared once, by ServiceSettings
    serve.set_defaults(handler=_cmd_serve)


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
    from mlsm.service.keys import ADMIN, SCORING, read_keys
    from mlsm.service.settings import ServiceSettings, given_options, project_service_options

    project, options = ProjectSettings(), {}
    if is_project_file(args.models):
        path = Path(args.models)
        project = read_project_settings(path)
        options = project_service_options(project.service, f"{path}: [service]", path.resolve().parent)
    given = given_options(args)
    sources: dict[str, str | None] = {}
    for scope, name in ((SCORING, "api"), (ADMIN, "admin")):
        in_project = options.get(f"{name}_key_file")
        key_file = given.get(f"{name}_key_file", in_project)
        keys, sources[name] = read_keys(scope, key_file)
        if f"{name}_key_file" not in given and in_project is not None:
            sources[name] = f"{args.models} [service] {name}_key_file ({in_project})"
        options[f"{name}_keys"] = keys
    options.update(given)
    options["id_field"] = id_field_of(args, project)
    options["store"] = given.get("store") or project.store
    return ServiceSettings(models=args.models, **options), sources
