"""Provenance of a run (which code produced its results) and the draft rule built on it.

``collect_provenance(models)`` records, for every model, its source file, the SHA-256 of that file and, when the
file is in a git working tree, the commit, the branch, the tags at HEAD and whether tracked files were changed;
plus the mlsm, Python and key library versions. Runs store it in their record (``info["provenance"]``), so each
stored document traces to its code through its ``_run``.

The draft rule: an ``active`` model whose source is in a git repository must come from released code: a clean tree
on a release branch (default ``main``, ``master``, ``release/*``) or at a tagged commit. Anything else may only run
as ``draft``. ``release_gate(model_set)`` is the one call a command makes before it starts (``mlsm run`` does, and
``mlsm serve`` should): it collects the provenance, applies the rule, and returns what to record.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import importlib.metadata
import inspect
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsm._paths import is_library_file
from mlsm.errors import ModelCodeChanged, UnreleasedModelError
from mlsm.lifecycle.git import TreeState, find_repository, is_tracked, tree_state
from mlsm.models import Model

if TYPE_CHECKING:
    from mlsm.lifecycle.project import ModelSet

__all__ = [
    "KEY_LIBRARIES",
    "ReleasePolicy",
    "Unreleased",
    "check_same_code",
    "code_digest",
    "collect_provenance",
    "environment",
    "file_digest",
    "find_unreleased",
    "model_digests",
    "parse_patterns",
    "release_gate",
    "release_policy",
    "source_file",
    "unreleased_warning",
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


@dataclass(frozen=True)
class ReleasePolicy:
    """Which code counts as released: branch name patterns and tag name patterns (``fnmatch`` style).

    A clean tree counts as released when its branch matches ``branches``, or HEAD carries a tag matching ``tags``,
    or (detached HEAD, e.g. a pinned checkout) a branch matching ``branches`` contains HEAD.
    """

    branches: tuple[str, ...] = ("main", "master", "release/*")
    tags: tuple[str, ...] = ("*",)

    @classmethod
    def from_patterns(cls, branches: Iterable[str] | None = None, tags: Iterable[str] | None = None) -> ReleasePolicy:
        """A policy from pattern lists; ``None`` keeps the default for that part."""
        default = cls()
        return cls(
            tuple(branches) if branches is not None else default.branches,
            tuple(tags) if tags is not None else default.tags,
        )

    def is_release_branch(self, name: str) -> bool:
        """True when branch ``name`` matches one of the release branch patterns."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.branches)

    def is_release_tag(self, name: str) -> bool:
        """True when tag ``name`` matches one of the release tag patterns."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.tags)

    def describe(self) -> str:
        """``main, master, release/*, or a tagged commit``: the policy in words, for messages."""
        parts = list(self.branches)
        if self.tags == ("*",):
            parts.append("a tagged commit")
        elif self.tags:
            parts.append("a commit tagged " + " or ".join(self.tags))
        if not parts:
            return "nothing (no release branches or tags are configured)"
        if len(parts) == 1:
            return parts[0]
        return ", ".join(parts[:-1]) + (", or " if len(parts) > 2 else " or ") + parts[-1]

    def to_dict(self) -> dict[str, list[str]]:
        """The JSON-ready form recorded with a run."""
        return {"branches": list(self.branches), "tags": list(self.tags)}


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
    if not path.is_file() or is_library_file(path):
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
    tags, dirty) and ``tracked``.
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
        origin = (origins or {}).get(model.key)
        if origin is not None:
            entry["origin"] = dict(origin)
        entries[model.key] = entry
    return {**environment(), "models": entries}


# -- the draft rule -----------------------------------------------------------------------------------------------


@dataclass
class Unreleased:
    """An active model whose code is not released: which model, why, and how to fix it."""

    model: str
    problem: str  # what is wrong, e.g. "comes from branch 'develop' of /repo"
    fix: str  # what to do first, before the generic choices

    def line(self, policy: ReleasePolicy) -> str:
        """One line for the terminal: the model, the problem, the release policy and the fixes."""
        return (
            f"model {self.model!r} is active but {self.problem} (released code is on {policy.describe()}): "
            f'{self.fix}, set its status="draft", or pass --allow-unreleased'
        )

    def short(self) -> str:
        """``name@version: problem``, as recorded in a run that overrode the rule."""
        return f"{self.model}: {self.problem}"


def _unreleased_entry(key: str, entry: Mapping[str, Any], policy: ReleasePolicy) -> Unreleased | None:
    git = entry.get("git")
    if entry.get("status") != "active" or not git:
        return None
    root = git["root"]
    where = f"branch {git['branch']!r}" if git.get("branch") else "a detached HEAD"
    if git.get("error"):
        return Unreleased(key, f"the git state of {root} cannot be read ({git['error']})", "fix the repository")
    if git.get("commit") is None:
        return Unreleased(key, f"comes from {root}, a git repository without commits", "commit and release it")
    if not entry.get("tracked", True):
        return Unreleased(key, f"its file {entry['source']} is not committed ({where} of {root})", "commit it")
    if git.get("dirty"):
        return Unreleased(key, f"{root} has uncommitted changes ({where})", "commit or discard them")
    if any(policy.is_release_tag(tag) for tag in git.get("tags", [])):
        return None
    branch = git.get("branch")
    if branch:
        if policy.is_release_branch(branch):
            return None
        return Unreleased(key, f"comes from branch {branch!r} of {root}", "merge it into a release branch or tag it")
    if any(policy.is_release_branch(name) for name in git.get("containing", [])):
        return None
    return Unreleased(
        key,
        f"comes from commit {git['commit'][:12]} of {root}, which is neither tagged nor on a release branch",
        "pin a released tag or commit",
    )


def find_unreleased(provenance: Mapping[str, Any], policy: ReleasePolicy | None = None) -> list[Unreleased]:
    """The active models of ``provenance`` (from :func:`collect_provenance`) whose code is not released."""
    policy = policy or ReleasePolicy()
    found = []
    for key, entry in provenance.get("models", {}).items():
        problem = _unreleased_entry(key, entry, policy)
        if problem is not None:
            found.append(problem)
    return found


def parse_patterns(text: str) -> tuple[str, ...]:
    """``"main, prod/*"`` (as ``--release-branches`` takes it) as ``("main", "prod/*")``."""
    return tuple(pattern.strip() for pattern in text.split(",") if pattern.strip())


def release_policy(model_set: ModelSet, branches: Sequence[str] | None = None) -> ReleasePolicy:
    """The draft rule's policy for ``model_set``: its project's ``[release]`` table (else the defaults), with
    ``branches`` (``--release-branches``) replacing the branch patterns when given; the tag patterns stay."""
    policy = model_set.settings.release
    return policy if branches is None else ReleasePolicy(tuple(branches), policy.tags)


def unreleased_warning(provenance: Mapping[str, Any]) -> str | None:
    """The warning to show when ``--allow-unreleased`` let active models from unreleased code run, else None."""
    overridden = provenance.get("draft_rule", {}).get("overridden") or []
    if not overridden:
        return None
    return f"--allow-unreleased: running active models from unreleased code: {'; '.join(overridden)}"


def release_gate(
    model_set: ModelSet, *, policy: ReleasePolicy | None = None, allow_unreleased: bool = False
) -> dict[str, Any]:
    """Collect the provenance of ``model_set`` and apply the draft rule; returns what a run records as
    ``info["provenance"]`` (with a ``draft_rule`` section saying whether the rule was overridden, and for which
    models).

    ``UnreleasedModelError`` (one line naming the model, its branch and the fix) when an active model comes from
    unreleased code and ``allow_unreleased`` is false. ``policy`` defaults to the project's ``[release]`` table,
    else :class:`ReleasePolicy` defaults.
    """
    if policy is None:
        policy = model_set.settings.release
    provenance = collect_provenance(
        model_set.models, default_files=model_set.files(), origins=model_set.origins(), loaded=model_set.digests()
    )
    found = find_unreleased(provenance, policy)
    if found and not allow_unreleased:
        message = found[0].line(policy)
        if len(found) > 1:
            message += f"; also unreleased: {', '.join(item.model for item in found[1:])}"
        raise UnreleasedModelError(message)
    provenance["draft_rule"] = {
        "policy": policy.to_dict(),
        "allow_unreleased": allow_unreleased,
        "overridden": [item.short() for item in found],
    }
    return provenance
