"""Turning a ``MODELS`` argument (a ``.py`` file or a dotted module) into a list of models.

The module's ``MODELS`` list is used when it has one; otherwise every ``Model``/``SummaryModel`` bound at its top
level, in definition order. A file is imported under a fresh module name every time, so loading it again (a
reload) never sees the previous import's state. A dotted module is imported afresh too: the Python modules of its
top-level package that an earlier import left in ``sys.modules`` are forgotten first (never ``mlsm`` itself, the
standard library, or compiled extension modules, which cannot be imported twice in a process).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from mlsm.errors import ModelLoadError
from mlsm.lifecycle.provenance import code_digest
from mlsm.models import Model

__all__ = ["LoadedModels", "load_models"]

_fresh = itertools.count(1)


@dataclass
class LoadedModels:
    """Models and where they came from."""

    models: list[Model]
    source: str  # what the user named
    module: ModuleType
    path: Path | None  # the file, when there is one
    helpers: dict[str, Path] = field(default_factory=dict)  # modules the file imported from its own folder
    digest: str | None = None  # the code hash of the bytes the file's import ran (None for a dotted module)


def load_models(spec: str, *, search: Path | None = None) -> LoadedModels:
    """Import ``spec`` and collect its models; ``ModelLoadError`` with one clear line when that fails.

    ``search`` (for a dotted module) is a folder importable while the module loads, such as a project's folder;
    the modules imported from it are forgotten afterwards and reported in ``helpers``, as a file's helper modules
    are.
    """
    path = Path(spec)
    helpers: dict[str, Path] = {}
    digest = None
    if spec.endswith(".py") or path.exists():
        module, digest = _import_file(path, spec, helpers)
    else:
        module = _import_module(spec, search, helpers)
    models = _collect(module, spec)
    file = getattr(module, "__file__", None)
    helpers.pop(module.__name__, None)  # the models file itself is not its own helper
    return LoadedModels(models, spec, module, Path(file).resolve() if file else None, helpers, digest)


def _import_file(path: Path, spec: str, helpers: dict[str, Path]) -> tuple[ModuleType, str]:
    """The module a models file defines, and the code hash of the very bytes it ran."""
    if not path.exists():
        raise ModelLoadError(f"cannot load models from {spec!r}: no such file")
    if path.is_dir():
        init = path / "__init__.py"
        if not init.exists():
            raise ModelLoadError(f"cannot load models from {spec!r}: a directory without __init__.py")
        path = init
    path = path.resolve()
    name = f"mlsm_models_{path.stem}_{next(_fresh)}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ModelLoadError(f"cannot load models from {spec!r}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    # the model file's folder is importable while it loads, so it can import its own helper modules
    folder = str(path.parent)
    sys.path.insert(0, folder)
    sys.modules[name] = module
    before = set(sys.modules)
    try:
        # compiled from the file's bytes as they are now, never from a cached .pyc (see _no_bytecode_cache);
        # hashed from those same bytes, so an edit after this read never passes for the code that runs
        source = path.read_bytes()
        digest = code_digest([source])
        code = compile(source, str(path), "exec", dont_inherit=True)
        with _no_bytecode_cache():
            exec(code, module.__dict__)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ModelLoadError(f"cannot load models from {spec!r}: {_describe(exc, path)}") from exc
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
        helpers.update(_forget_helpers(set(sys.modules) - before, path.parent))
    return module, digest


@contextmanager
def _no_bytecode_cache() -> Iterator[None]:
    """Import without writing ``__pycache__`` files.

    Python trusts a cached ``.pyc`` when its source has the same size and modification second; a models file or
    helper rewritten within the same second with the same size (a quick edit, a checkout, a deploy tool) would
    then run its old code while provenance hashes the new bytes. Modules this process imports for models are
    therefore compiled from source each time, and leave no cache behind.
    """
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = before


def _forget_helpers(names: set[str], folder: Path) -> dict[str, Path]:
    """Drop the helper modules a model file imported from its own folder (``from features import ...``).

    The model's functions keep their helpers alive; forgetting the names lets another model source (another
    repository of a project, or a reload) import its own helper of the same name instead of this one.
    Returns the forgotten modules' files by name.
    """
    forgotten: dict[str, Path] = {}
    in_folder: dict[str, bool] = {}  # per top-level name: does the folder hold it (a models file imports thousands)
    for name in names:
        file = getattr(sys.modules.get(name), "__file__", None)
        if not file:
            continue
        top = name.split(".")[0]
        if top not in in_folder:
            in_folder[top] = os.path.lexists(folder / f"{top}.py") or os.path.lexists(folder / top)
        if not in_folder[top]:  # no file of it resolves into the folder: resolving each would cost a second or so
            continue
        try:
            relative = Path(file).resolve().relative_to(folder)
        except ValueError:
            continue
        # found through the folder itself: folder/top.py or folder/top/... (not, say, a virtualenv inside it)
        if relative.parts and relative.parts[0] in (f"{top}.py", top):
            sys.modules.pop(name, None)
            forgotten[name] = Path(file).resolve()
    return forgotten


def _forget_package(spec: str) -> list[str]:
    """Forget the cached Python modules of ``spec``'s top-level package, so importing ``spec`` reads its code now.

    A reload after ``pip install -U acme-scoring`` or an edit must not get the module objects of the first import.
    Kept: ``mlsm`` (models are checked against its classes), the standard library, and compiled extension modules.
    The modules forgotten stay alive as long as the models that use them. Returns the names forgotten.
    """
    top = spec.partition(".")[0]
    if not top or top == "mlsm" or top in sys.stdlib_module_names:
        return []
    stdlib = [Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")]
    forgotten = []
    for name in [name for name in list(sys.modules) if name == top or name.startswith(top + ".")]:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file is not None and not file.endswith(".py"):
            continue  # an extension module (or a compiled .pyc-only one): importing it again fails or is unsafe
        if file is not None and any(Path(file).resolve().is_relative_to(folder) for folder in stdlib):
            continue
        sys.modules.pop(name, None)
        forgotten.append(name)
    importlib.invalidate_caches()  # a module file added since the last import is found
    return forgotten


def _import_module(spec: str, search: Path | None, helpers: dict[str, Path]) -> ModuleType:
    _forget_package(spec)
    folder = str(search.resolve()) if search is not None else None
    if folder is not None:
        sys.path.insert(0, folder)
    before = set(sys.modules)
    try:
        with _no_bytecode_cache():
            return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and spec.startswith(exc.name):
            raise ModelLoadError(
                f"cannot load models from {spec!r}: no such file, and no module of that name is importable"
            ) from exc
        raise ModelLoadError(f"cannot load models from {spec!r}: {_describe(exc, None)}") from exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ModelLoadError(f"cannot load models from {spec!r}: {_describe(exc, None)}") from exc
    finally:
        if folder is not None:
            try:
                sys.path.remove(folder)
            except ValueError:
                pass
            helpers.update(_forget_helpers(set(sys.modules) - before, Path(folder)))


def _collect(module: ModuleType, spec: str) -> list[Model]:
    listed = getattr(module, "MODELS", None)
    if listed is not None:
        if not isinstance(listed, (list, tuple)):
            raise ModelLoadError(f"{spec!r}: MODELS must be a list of models, got {type(listed).__name__}")
        bad = [item for item in listed if not isinstance(item, Model)]
        if bad:
            raise ModelLoadError(f"{spec!r}: MODELS holds something that is not a Model: {bad[0]!r}")
        models = list(listed)
    else:
        models = []
        seen: set[int] = set()
        for value in vars(module).values():
            if isinstance(value, Model) and id(value) not in seen:
                seen.add(id(value))
                models.append(value)
    if not models:
        raise ModelLoadError(
            f"{spec!r} defines no models: bind Model/SummaryModel objects at its top level or list them in MODELS"
        )
    return models


def _describe(exc: BaseException, path: Path | None) -> str:
    """One line: the exception and, when known, the line of the model file that raised it."""
    import traceback

    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{text}" if "line" in text else f"{text} (line {exc.lineno})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if path is None or Path(f.filename) == path]
    if frames:
        text += f" (line {frames[-1].lineno})"
    return text
