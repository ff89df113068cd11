"""Running ``git`` and reading the state of a working tree, for provenance and for project sources.

Everything goes through the real ``git`` command (no library): ``run_git`` returns its output or raises
:class:`GitFailed` with git's own message in one line. ``GIT_TERMINAL_PROMPT=0`` keeps git from ever waiting for a
password on a terminal: an unreachable or private URL fails instead of hanging.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LOCAL_TIMEOUT",
    "GitFailed",
    "TreeState",
    "find_repository",
    "git_available",
    "is_tracked",
    "run_git",
    "tree_state",
]

#: Seconds a local git command may take; network commands (clone, fetch) get their own, longer limit.
LOCAL_TIMEOUT = 60.0


class GitFailed(Exception):
    """Internal signal: a git command failed; ``message`` is git's last meaningful line. Callers translate it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def git_available() -> bool:
    """True when a ``git`` command is on PATH."""
    return shutil.which("git") is not None


def run_git(args: list[str], cwd: Path | str, *, timeout: float = LOCAL_TIMEOUT, check: bool = True) -> str:
    """Run ``git ARGS`` in ``cwd``; its standard output without the trailing newline.

    With ``check=False`` a failing command returns ``""`` instead of raising (for queries such as
    ``symbolic-ref`` whose failure is an answer).
    """
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_ASKPASS", "true")  # a credential prompt answers nothing instead of blocking
    env["LC_ALL"] = "C"
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise GitFailed("git is not installed (no 'git' command on PATH)") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitFailed(f"'git {' '.join(args)}' did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        if not check:
            return ""
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        # git's most useful line is usually the first 'fatal:' or 'error:' one
        useful = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
        message = useful[0] if useful else f"exit status {proc.returncode}"
        raise GitFailed(message.removeprefix("fatal: ").removeprefix("error: "))
    return proc.stdout.rstrip("\n")


def find_repository(path: Path) -> Path | None:
    """The top folder of the git working tree holding ``path`` (a ``.git`` folder or file found upwards), or None."""
    here = path if path.is_dir() else path.parent
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


@dataclass
class TreeState:
    """What git says about a working tree: where HEAD is, which names point at it, and local changes."""

    root: Path
    commit: str | None = None  # None in a repository without commits
    branch: str | None = None  # None when HEAD is detached
    tags: list[str] = field(default_factory=list)  # tags pointing at HEAD
    containing: list[str] = field(default_factory=list)  # branches (local and remote-tracking) holding HEAD
    dirty: bool = False  # tracked files changed, staged or not
    error: str | None = None  # set when the state could not be read

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready form stored in provenance."""
        out: dict[str, object] = {
            "root": str(self.root),
            "commit": self.commit,
            "branch": self.branch,
            "tags": list(self.tags),
            "dirty": self.dirty,
        }
        if self.branch is None and self.commit is not None:
            out["containing"] = list(self.containing)
        if self.error is not None:
            out["error"] = self.error
        return out


def tree_state(root: Path) -> TreeState:
    """Read the state of the working tree at ``root``; problems are reported in ``error``, never raised."""
    state = TreeState(root)
    try:
        commit = run_git(["rev-parse", "--verify", "--quiet", "HEAD"], root, check=False)
        if not commit:
            run_git(["rev-parse", "--git-dir"], root)  # raises when this is not a usable repository
            return state
        state.commit = commit
        state.branch = run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], root, check=False) or None
        tags = run_git(["tag", "--points-at", "HEAD"], root)
        state.tags = [tag for tag in tags.splitlines() if tag]
        if state.branch is None:
            refs = run_git(
                ["for-each-ref", "--contains", "HEAD", "--format=%(refname)", "refs/heads", "refs/remotes"], root
            )
            state.containing = _branch_names(refs.splitlines())
        # untracked files are not counted: build outputs and artifacts live beside models without being code
        state.dirty = bool(run_git(["status", "--porcelain", "--untracked-files=no"], root))
    except GitFailed as exc:
        state.error = exc.message
    return state


def is_tracked(root: Path, path: Path) -> bool:
    """True when ``path`` is a file git tracks in the working tree at ``root``."""
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    try:
        return bool(run_git(["ls-files", "--", str(relative)], root))
    except GitFailed:
        return False


def _branch_names(refs: list[str]) -> list[str]:
    """Branch names from full ref names: ``refs/heads/x`` and ``refs/remotes/<remote>/x`` both give ``x``."""
    names: list[str] = []
    for ref in refs:
        if ref.startswith("refs/heads/"):
            name = ref.removeprefix("refs/heads/")
        elif ref.startswith("refs/remotes/"):
            parts = ref.removeprefix("refs/remotes/").split("/", 1)
            if len(parts) != 2 or parts[1] == "HEAD":
                continue
            name = parts[1]
        else:
            continue
        if name not in names:
            names.append(name)
    return names
