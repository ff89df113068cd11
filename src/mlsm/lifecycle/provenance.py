"""Provenance of a run: which code produced its results.

``collect_provenance(models)`` records, for every model, its source file, the SHA-256 of that file and, when the
file is in a git working tree, the commit, the branch, the tags at HEAD and whether tracked files were changed;
plus the mlsm, Python and key library versions. Runs store it in their record (``info["provenance"]``), so each
stored document traces to its code through its ``_run``. The draft rule built on it is :mod:`mlsm.lifecycle.release`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsm._paths import is_user_file
from mlsm.errors import ModelCodeChanged
from mlsm.lifecycle.git import TreeState, find_repository, is_tracked, tree_state

if TYPE_CHECKING:  # annotations only: the engine imports this module, and models import the engine
    from mlsm.models import Model

__all__ = [
    "KEY_LIBRARIES",
    "check_same_code",
    "code_digest",
    "collect_provenance",
    "environment",
    "file_digest",
    "model_digests",
    "source_file",
]

#: Libraries whose versions a run records when they are installed (a model's numbers depend on them).
KEY_LIBRARIES = (
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "joblib",
    "scipy",
    "xgboost",
    "lightgbm",
    "statsmodels",
    "torch",
)


# -- what a model's code is ---------------------------------------------------------------------------------------


def source_file(model: Model, default: Path | None = None) -> Path | None:
    """The file that defines ``model.fcn``; ``default`` (the file the models were loaded from) when the function
    is not defined in a file of the user's own (a library callable, a builtin, code made at run time)."""
    target: Any = model.fcn
    for _ in range(10):  # unwrap partials, bound methods and decorators
        if isinstance(target, functools.partial):
            target = target.func
        elif inspect.ismethod(target):
            target = target.__func__
        elif hasattr(target, "__wrapped__"):
            target = target.__wrapped__
        else:
            break
    if not (inspect.isfunction(target) or inspect.isclass(target)):
        target = type(target)  # a callable object: the file of its class
    try:
        name = inspect.getsourcefile(target)
    except (TypeError, OSError):
        name = None
    if not name:
        return default
    path = Path(name).resolve()
    if not is_user_file(str(path)):  # mlsm's own callables (Model.from_estimator's scorer) included
        return default
    return path


def code_digest(parts: Iterable[bytes]) -> str:
    """``sha256:<hex>`` of bytes given in parts: the one hash mlsm records for code (a file, or a set of files)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return "sha256:" + digest.hexdigest()


def file_digest(path: Path) -> str:
    """:func:`code_digest` of a file's bytes, read in blocks."""
    with open(path, "rb") as handle:
        return code_digest(iter(lambda: handle.read(1 << 20), b""))


def model_digests(
    models: Sequence[Model],
    *,
    default_files: Mapping[str, Path | None] | None = None,
    loaded: Mapping[Path, str] | None = None,
) -> dict[str, tuple[Path | None, str | None]]:
    """Each model's key, source file and code hash (None without a file): the hash provenance records and that
    worker processes check. ``loaded`` maps files to the hash of the bytes an import actually ran (a models file
    edited since it was imported keeps the hash of the code that runs)."""
    digests: dict[Path, str] = dict(loaded or {})
    found: dict[str, tuple[Path | None, str | None]] = {}
    for model in models:
        path = source_file(model, (default_files or {}).get(model.key))
        if path is not None and path not in digests:
            digests[path] = file_digest(path)
        found[model.key] = (path, digests[path] if path is not None else None)
    return found


def check_same_code(
    recorded: Mapping[str, str], models: Mapping[str, tuple[Path | None, str | None]], who: str
) -> None:
    """``ModelCodeChanged`` (one line) when a model's code hash differs from the one a run recorded for it.

    ``models`` is what :func:`model_digests` found where the models were loaded again (``who``: "a worker process",
    "a Ray actor"), so results are never attributed to code other than the code that produced them.
    """
    for key, (path, digest) in models.items():
        expected = recorded.get(key)
        if expected is not None and digest != expected:
            found = digest[7:19] if digest else "none"
            raise ModelCodeChanged(
                f"{who} loaded other code for model {key!r} than this run recorded ({path}: sha256 {found}, "
                f"the run has {expected[7:19]}): the file changed after the run started; the run stops so that no "
                "result is attributed to code that did not produce it; start the run again"
            )


def environment() -> dict[str, Any]:
    """The mlsm, Python and platform versions, and the versions of the installed :data:`KEY_LIBRARIES`."""
    from mlsm._version import __version__

    libraries: dict[str, str] = {}
    for name in KEY_LIBRARIES:
        try:
            libraries[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "mlsm": __version__,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "libraries": libraries,
    }


def collect_provenance(
    models: Sequence[Model],
    *,
    default_files: Mapping[str, Path | None] | None = None,
    origins: Mapping[str, Mapping[str, Any]] | None = None,
    loaded: Mapping[Path, str] | None = None,
) -> dict[str, Any]:
    """Provenance of a model set: ``{"mlsm", "python", ..., "libraries", "models": {name@version: entry}}``.

    ``default_files`` maps a model key to the file it was loaded from (used when its function is not defined in a
    user file); ``origins`` maps a model key to where a project took it from (recorded as ``origin``); ``loaded``
    maps a file to the hash of the bytes its import ran (see :func:`model_digests`). An entry
    holds ``status``, ``kind``, ``source``, ``sha256`` and, in a git working tree, ``git`` (root, commit, branch,
    tags, dirty) and ``tracked``; a model made from a joblib file (``Model.from_estimator``) also ``artifact``: its
    path, ``sha256`` and the scikit-learn version it was saved with.
    """
    states: dict[Path, TreeState] = {}
    tracked: dict[Path, bool] = {}
    entries: dict[str, Any] = {}
    code = model_digests(models, default_files=default_files, loaded=loaded)
    for model in models:
        path, digest = code[model.key]
        entry: dict[str, Any] = {"status": model.status, "kind": model.kind, "source": str(path) if path else None}
        if path is not None:
            entry["sha256"] = digest
            root = find_repository(path)
            if root is not None:
                if root not in states:
                    states[root] = tree_state(root)
                if path not in tracked:
                    tracked[path] = is_tracked(root, path)
                entry["git"] = states[root].to_dict()
                entry["tracked"] = tracked[path]
            else:
                entry["git"] = None
        artifact = getattr(model.fcn, "artifact", None)  # a model made from a saved estimator (from_estimator)
        if isinstance(artifact, Mapping):
            entry["artifact"] = dict(artifact)
        origin = (origins or {}).get(model.key)
        if origin is not None:
            entry["origin"] = dict(origin)
        entries[model.key] = entry
    return {**environment(), "models": entries}
