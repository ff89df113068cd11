"""Whose code a file is: mlsm's own, the standard library's or an installed package's, or else the user's."""

from __future__ import annotations

import functools
import sysconfig
from pathlib import Path

__all__ = ["MLSM_FOLDER", "is_library_file", "is_user_file"]

#: The folder of the mlsm package itself.
MLSM_FOLDER = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def _library_folders() -> tuple[Path, ...]:
    folders = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        value = sysconfig.get_paths().get(key)
        if value:
            folders.add(Path(value).resolve())
    return tuple(sorted(folders))


def is_library_file(path: Path) -> bool:
    """True for a file of the standard library or of an installed package, not of the user's own code."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(folder) for folder in _library_folders())


@functools.lru_cache(maxsize=256)
def is_user_file(filename: str) -> bool:
    """True for an existing file of the user's own code: not mlsm's, the standard library's or a package's."""
    path = Path(filename)
    return path.is_file() and not path.resolve().is_relative_to(MLSM_FOLDER) and not is_library_file(path)
