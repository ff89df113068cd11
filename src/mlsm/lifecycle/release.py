"""The draft rule: which code counts as released, and the gate a command passes before its models run.

An ``active`` model whose source is in a git repository must come from released code: a clean tree on a release
branch (default ``main``, ``master``, ``release/*``) or at a tagged commit. Anything else may only run as ``draft``.
``release_gate(model_set)`` is the one call a command makes before it starts (through
:func:`mlsm.lifecycle.prepare.prepare`: ``mlsm run`` and ``mlsm serve``, at start and on every reload): it collects
the provenance (:mod:`mlsm.lifecycle.provenance`), applies the rule, and returns what to record.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlsm.errors import UnreleasedModelError
from mlsm.lifecycle.provenance import collect_provenance

if TYPE_CHECKING:
    from mlsm.lifecycle.project import ModelSet

__all__ = [
    "ReleasePolicy",
    "Unreleased",
    "find_unreleased",
    "parse_patterns",
    "release_gate",
    "release_policy",
    "unreleased_warning",
]


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
