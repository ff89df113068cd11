"""A run's ``--output`` and ``--rejects`` files: refused before the run when they would harm its input or store,
and reopened on resume cut back to what the last committed chunk had written."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import IO

from mlsm.errors import RunError
from mlsm.readers import FORMATS, expand_inputs

__all__ = ["check_run_files", "open_resumable"]


def check_run_files(
    input_spec: str | os.PathLike[str], *, output: str | None, rejects: str | None, store_url: str | None = None
) -> None:
    """Refuse (``RunError``, one line) an ``--output`` or ``--rejects`` file that would overwrite an input file, the
    SQLite store's file or the other one, would join a directory or glob input, or cannot be written; opens nothing.

    Paths are compared with links followed: the same device and inode for files that exist, the resolved paths for
    those that do not yet.
    """
    inputs = expand_inputs(input_spec)
    spec = str(input_spec)
    store_files = []
    if store_url and store_url.startswith("sqlite:"):
        from mlsm.stores.sqlite import sqlite_path

        base = sqlite_path(store_url)[0]
        store_files = [base, base + "-wal", base + "-shm", base + "-journal"]
    named = [(flag, path) for flag, path in (("--output", output), ("--rejects", rejects)) if path is not None]
    for flag, path in named:
        target = Path(path)
        for file in inputs:
            if _same_file(target, file):
                raise RunError(f"{flag} {path!r} is the input file {str(file)!r}: writing it would destroy the input")
        if _joins_input(target, spec):
            raise RunError(
                f"{flag} {path!r} would become one of the files of the input {spec!r} (and be read by the next run, or "
                "change what a resumed run reads): write it elsewhere"
            )
        for part in store_files:
            if _same_file(target, Path(part)):
                raise RunError(f"{flag} {path!r} is a file of the store {store_url}: writing it would ruin the store")
        _check_writable(flag, target)
    if len(named) == 2 and _same_file(Path(named[0][1]), Path(named[1][1])):
        raise RunError(f"--output and --rejects name the same file {named[0][1]!r}: give each its own file")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: hard and symbolic links included."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def _joins_input(target: Path, spec: str) -> bool:
    """Whether a file written at ``target`` would be one of the files a directory or glob input names."""
    if target.suffix.lower() not in FORMATS:
        return False
    where = Path(spec)
    if where.is_dir():
        return os.path.realpath(target.parent) == os.path.realpath(where)
    if any(char in spec for char in "*?[") and not where.exists():
        return fnmatch.fnmatch(os.path.abspath(target), os.path.abspath(spec))
    return False


def _check_writable(flag: str, target: Path) -> None:
    if target.is_dir():
        raise RunError(f"{flag} {str(target)!r} is a directory: name a file")
    folder = target.parent
    if not folder.is_dir():
        raise RunError(f"cannot write {flag} {str(target)!r}: no such directory {str(folder)!r}")
    if not os.access(target if target.exists() else folder, os.W_OK):
        raise RunError(f"cannot write {flag} {str(target)!r}: permission denied")


def open_resumable(path: str | None, offset: int, resume: bool) -> IO[str] | None:
    """A JSON lines output file (None without ``path``); when resuming, cut back to ``offset``, what the last
    committed chunk had written."""
    if path is None:
        return None
    target = Path(path)
    if resume and target.exists():
        handle = open(target, "r+", encoding="utf-8", newline="\n")  # noqa: SIM115 - the caller closes it
        handle.truncate(offset)
        handle.seek(offset)
        return handle
    return open(target, "w", encoding="utf-8", newline="\n")
