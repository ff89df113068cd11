"""Projects: an ``mlsm.toml`` listing a deployment's model sources and its defaults.

```toml
cache_dir = ".mlsm/sources"          # where git sources are cloned (relative to this file; this is the default)

[defaults]
id_field = "Prospect ID"
store = "sqlite:///results.db"
chunk_size = 10000

[service]                            # settings for `mlsm serve`, passed through as a table
port = 8000

[release]                            # the draft rule's notion of released code (these are the defaults)
branches = ["main", "master", "release/*"]
tags = ["*"]

[[models]]
path = "models/rules.py"             # a .py file or package folder, relative to this file

[[models]]
module = "acme_scoring.models"       # an importable module (this file's folder is importable while it loads)

[[models]]
name = "lead-gbm"                    # optional; what `mlsm pin` calls this source (default: the repository name)
git = "https://git.example.com/ds/lead-gbm.git"   # any URL git can reach, or a local path
tag = "v1.4.0"                       # or: commit = "3f2a9c1..."; a branch is not a pin
file = "models.py"                   # the models file inside the repository (default: models.py)
```

``load_model_set(spec)`` turns a ``MODELS`` argument (a ``.py`` file, a dotted module, or a project file ending
in ``.toml``) into a :class:`ModelSet`: the models, where each came from, and the project's settings. Git sources
are cloned once into a mirror in the cache and checked out per commit, so switching a pin back (a rollback) needs
no network when that commit was fetched before. ``pin_source`` rewrites one source's pin in the file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mlsm.errors import ModelLoadError, ProjectError
from mlsm.lifecycle.git import GitFailed, run_git
from mlsm.lifecycle.loader import load_models
from mlsm.lifecycle.release import ReleasePolicy
from mlsm.models import Model

__all__ = [
    "DEFAULT_CACHE_DIR",
    "NETWORK_TIMEOUT",
    "ModelSet",
    "ModelSource",
    "ProjectSettings",
    "fetch_git_source",
    "is_project_file",
    "load_model_set",
    "load_project",
    "pin_source",
    "read_project_settings",
]

#: Where git sources are cloned, relative to the project file, unless ``cache_dir`` says otherwise.
DEFAULT_CACHE_DIR = ".mlsm/sources"
#: Seconds a clone or fetch may take.
NETWORK_TIMEOUT = 600.0

_TOP_KEYS = ("cache_dir", "defaults", "models", "release", "service")
_DEFAULT_KEYS = {"id_field": str, "store": str, "chunk_size": int}
_RELEASE_KEYS = ("branches", "tags")
_SOURCE_KEYS = ("commit", "file", "git", "module", "name", "path", "tag")
_HEX = re.compile(r"[0-9a-fA-F]{4,40}\Z")


@dataclass(frozen=True)
class ProjectSettings:
    """A project's defaults: used when the command line does not say otherwise."""

    id_field: str | None = None
    store: str | None = None
    chunk_size: int | None = None
    service: dict[str, Any] = field(default_factory=dict)
    release: ReleasePolicy = field(default_factory=ReleasePolicy)


@dataclass
class ModelSource:
    """One model source and the models it gave: a file, a module, or a git repository at a pinned commit."""

    kind: str  # "path" | "module" | "git"
    spec: str  # what the user wrote (path, module name, or git URL)
    models: list[Model] = field(default_factory=list)
    path: Path | None = None  # the file the models were loaded from
    name: str | None = None  # a project source's name (git sources always have one)
    tag: str | None = None
    commit: str | None = None  # the full commit a git source resolved to
    file: str | None = None  # git: the models file inside the repository
    module: ModuleType | None = field(default=None, repr=False)  # the module the models were imported in
    helpers: dict[str, Path] = field(default_factory=dict, repr=False)  # modules it imported from its folder
    digest: str | None = None  # the code hash of the bytes its models file's import ran

    @property
    def label(self) -> str:
        """Where the models came from, in a few words: ``models.py``, ``git URL @ v1.2 (3f2a9c1)``."""
        if self.kind == "git":
            pin = f"{self.tag} ({(self.commit or '')[:7]})" if self.tag else (self.commit or "")[:12]
            inner = "" if self.file in (None, "models.py") else f" {self.file}"
            return f"git {self.spec}{inner} @ {pin}"
        if self.kind == "module":
            return f"module {self.spec}"
        return self.spec

    def origin(self) -> dict[str, Any]:
        """The JSON-ready description recorded in provenance."""
        out: dict[str, Any] = {"kind": self.kind, "spec": self.spec}
        for key in ("name", "tag", "commit", "file"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass
class ModelSet:
    """Models ready to plan, with where each came from and the settings of their project (if any)."""

    models: list[Model]
    sources: list[ModelSource]
    settings: ProjectSettings = field(default_factory=ProjectSettings)
    project: Path | None = None  # the project file, when the models came from one

    def source_of(self, model: Model) -> ModelSource:
        """The source ``model`` came from."""
        for source in self.sources:
            if any(item is model for item in source.models):
                return source
        raise KeyError(model.key)

    def files(self) -> dict[str, Path | None]:
        """Each model's key and the file it was loaded from (for provenance)."""
        return {model.key: source.path for source in self.sources for model in source.models}

    def digests(self) -> dict[Path, str]:
        """Each models file and the code hash of the bytes its import ran (what provenance records for it)."""
        return {source.path: source.digest for source in self.sources if source.path and source.digest}

    def origins(self) -> dict[str, dict[str, Any]]:
        """Each model's key and its source's description (for provenance)."""
        return {model.key: source.origin() for source in self.sources for model in source.models}


def is_project_file(spec: str) -> bool:
    """True when a ``MODELS`` argument names a project file (it ends in ``.toml``)."""
    return spec.lower().endswith(".toml")


def load_model_set(spec: str, *, cache_dir: Path | None = None) -> ModelSet:
    """The models a ``MODELS`` argument names: a project file (``*.toml``), a ``.py`` file, or a dotted module.

    ``ModelLoadError``/``ProjectError`` with one clear line when the models cannot be loaded or fetched.
    """
    if is_project_file(spec):
        return load_project(Path(spec), cache_dir=cache_dir)
    loaded = load_models(spec)
    kind = "path" if loaded.path is not None and (spec.endswith(".py") or Path(spec).exists()) else "module"
    source = ModelSource(
        kind, spec, list(loaded.models), loaded.path, module=loaded.module, helpers=loaded.helpers, digest=loaded.digest
    )
    return ModelSet(list(loaded.models), [source])


# -- reading a project file ----------------------------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ProjectError(f"cannot read project {str(path)!r}: no such file")
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"cannot read project {str(path)!r}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ProjectError(f"cannot read project {str(path)!r}: {exc.strerror}") from exc


def _unknown(where: str, data: dict[str, Any], valid: tuple[str, ...] | list[str]) -> None:
    for key in data:
        if key not in valid:
            raise ProjectError(f"{where}: unknown key {key!r}; valid keys are: {', '.join(sorted(valid))}")


def _string_list(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProjectError(f"{where} must be a list of strings, got {value!r}")
    return value


def _settings(path: Path, data: dict[str, Any]) -> ProjectSettings:
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ProjectError(f"{path}: [defaults] must be a table")
    _unknown(f"{path}: [defaults]", defaults, list(_DEFAULT_KEYS))
    for key, kind in _DEFAULT_KEYS.items():
        value = defaults.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ProjectError(f"{path}: [defaults] {key} must be a {kind.__name__}, got {value!r}")
    chunk = defaults.get("chunk_size")
    if chunk is not None and chunk < 1:
        raise ProjectError(f"{path}: [defaults] chunk_size must be at least 1, got {chunk}")
    service = data.get("service", {})
    if not isinstance(service, dict):
        raise ProjectError(f"{path}: [service] must be a table")
    release = data.get("release", {})
    if not isinstance(release, dict):
        raise ProjectError(f"{path}: [release] must be a table")
    _unknown(f"{path}: [release]", release, _RELEASE_KEYS)
    policy = ReleasePolicy.from_patterns(
        _string_list(f"{path}: [release] branches", release["branches"]) if "branches" in release else None,
        _string_list(f"{path}: [release] tags", release["tags"]) if "tags" in release else None,
    )
    return ProjectSettings(defaults.get("id_field"), defaults.get("store"), chunk, dict(service), policy)


def read_project_settings(path: Path) -> ProjectSettings:
    """A project file's settings (``[defaults]``, ``[service]``, ``[release]``) without loading its models.

    ``ProjectError`` with one line when the file cannot be read or a setting is invalid.
    """
    data = _read(Path(path))
    _unknown(str(path), data, _TOP_KEYS)
    return _settings(Path(path), data)


def load_project(path: Path, *, cache_dir: Path | None = None) -> ModelSet:
    """Read a project file and load every model source it lists, fetching git sources into the cache."""
    path = Path(path)
    data = _read(path)
    _unknown(str(path), data, _TOP_KEYS)
    settings = _settings(path, data)
    base = path.resolve().parent
    if cache_dir is None:
        configured = data.get("cache_dir", DEFAULT_CACHE_DIR)
        if not isinstance(configured, str):
            raise ProjectError(f"{path}: cache_dir must be a path (a string), got {configured!r}")
        cache_dir = base / configured
    entries = data.get("models")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ProjectError(
            f"{path}: no model sources: list them as [[models]] tables with path = ..., module = ... or git = ..."
        )
    sources: list[ModelSource] = []
    seen: dict[str, ModelSource] = {}
    for number, entry in enumerate(entries, 1):
        source = _load_source(path, number, entry, base, cache_dir)
        for model in source.models:
            if model.key in seen:
                raise ProjectError(
                    f"{path}: model {model.key!r} comes from both {seen[model.key].label} and {source.label}: "
                    "each name@version may appear once"
                )
            seen[model.key] = source
        sources.append(source)
    models = [model for source in sources for model in source.models]
    return ModelSet(models, sources, settings, path.resolve())


def _check_source(path: Path, number: int, entry: dict[str, Any]) -> str:
    where = f"{path}: [[models]] entry {number}"
    _unknown(where, entry, _SOURCE_KEYS)
    kinds = [key for key in ("path", "module", "git") if key in entry]
    if len(kinds) != 1:
        raise ProjectError(f"{where}: give exactly one of path, module or git, got {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    for key in _SOURCE_KEYS:
        if key in entry and not isinstance(entry[key], str):
            raise ProjectError(f"{where}: {key} must be a string, got {entry[key]!r}")
    if kind == "git":
        pins = [key for key in ("tag", "commit") if key in entry]
        if len(pins) != 1:
            raise ProjectError(
                f'{where}: a git source is pinned by exactly one of tag = "v1.2" or commit = "<hash>", '
                f"got {', '.join(pins) or 'none'}"
            )
        if "commit" in entry and not _HEX.match(entry["commit"]):
            raise ProjectError(
                f"{where}: commit {entry['commit']!r} is not a commit hash; pin a tag with tag = ... "
                "or a commit with its hash (a branch is not a pin)"
            )
    else:
        extra = [key for key in ("tag", "commit", "file") if key in entry]
        if extra:
            raise ProjectError(f"{where}: {', '.join(extra)} only apply to git sources")
    return kind


def _load_source(path: Path, number: int, entry: dict[str, Any], base: Path, cache_dir: Path) -> ModelSource:
    kind = _check_source(path, number, entry)
    name = entry.get("name")
    where = f"{path}: [[models]] entry {number}"
    if kind == "path":
        try:
            loaded = load_models(str(base / entry["path"]))
        except ModelLoadError as exc:
            raise ModelLoadError(f"{where}: {exc}") from exc
        return ModelSource(
            "path", entry["path"], list(loaded.models), loaded.path, name, module=loaded.module, helpers=loaded.helpers,
            digest=loaded.digest,
        )  # fmt: skip
    if kind == "module":
        try:
            loaded = load_models(entry["module"], search=base)  # this file's folder is importable while it loads
        except ModelLoadError as exc:
            raise ModelLoadError(f"{where}: {exc}") from exc
        return ModelSource(
            "module", entry["module"], list(loaded.models), loaded.path, name, module=loaded.module,
            helpers=loaded.helpers, digest=loaded.digest,
        )  # fmt: skip
    url = entry["git"]
    checkout, commit = fetch_git_source(
        _git_location(url, base), tag=entry.get("tag"), commit=entry.get("commit"), cache_dir=cache_dir
    )
    inner = entry.get("file", "models.py")
    file = (checkout / inner).resolve()
    if not file.is_relative_to(checkout.resolve()):
        raise ProjectError(f"{path}: [[models]] entry {number}: file {inner!r} is outside the repository")
    if not file.exists():
        raise ProjectError(
            f"{path}: [[models]] entry {number}: {url} at {entry.get('tag') or commit[:12]} has no file {inner!r}; "
            'set file = "path/inside/the/repository.py"'
        )
    try:
        loaded = load_models(str(file))
    except ModelLoadError as exc:
        raise ModelLoadError(f"{url} at {entry.get('tag') or commit[:12]}: {exc}") from exc
    return ModelSource(
        "git", url, list(loaded.models), loaded.path, name or _repo_name(url), entry.get("tag"), commit, inner,
        module=loaded.module, helpers=loaded.helpers, digest=loaded.digest,
    )  # fmt: skip


def _is_url(location: str) -> bool:
    return "://" in location or bool(re.match(r"[\w.-]+@[\w.-]+:", location))


def _git_location(url: str, base: Path) -> str:
    """A git URL as given, or a local repository path made absolute against the project's folder."""
    if _is_url(url):
        return url
    return str((base / os.path.expanduser(url)).resolve())


def _repo_name(url: str) -> str:
    tail = re.split(r"[/:\\]", url.rstrip("/"))[-1]
    return tail.removesuffix(".git") or url


# -- git sources ---------------------------------------------------------------------------------------------------


def _cache_key(location: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", _repo_name(location))[:40]
    return f"{slug}-{hashlib.sha256(location.encode()).hexdigest()[:12]}"


def _resolve(mirror: Path, tag: str | None, commit: str | None) -> str | None:
    """The full commit a pin names in ``mirror``, or None when the mirror does not have it (yet)."""
    ref = f"refs/tags/{tag}^{{commit}}" if tag is not None else f"{commit}^{{commit}}"
    found = run_git(["rev-parse", "--verify", "--quiet", ref], mirror, check=False)
    return found or None


def fetch_git_source(location: str, *, tag: str | None, commit: str | None, cache_dir: Path) -> tuple[Path, str]:
    """Check out ``location`` (a URL or an absolute local path) at a tag or commit under ``cache_dir``.

    Returns the checkout folder and the full commit. The repository is mirrored once and fetched again only
    when the pin is not in the mirror yet; each commit gets its own checkout folder, made once.
    ``ProjectError`` when the repository cannot be fetched or does not have the pin.
    """
    if (tag is None) == (commit is None):
        raise ProjectError("a git source needs exactly one of tag or commit")
    key = _cache_key(location)
    mirror = cache_dir / "mirrors" / f"{key}.git"
    pin = f"tag {tag!r}" if tag is not None else f"commit {commit!r}"
    try:
        if not mirror.exists():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=mirror.parent, prefix=".clone-") as scratch:
                target = Path(scratch) / "mirror.git"
                run_git(["clone", "--quiet", "--mirror", location, str(target)], scratch, timeout=NETWORK_TIMEOUT)
                _move_into_place(target, mirror)
            resolved = _resolve(mirror, tag, commit)
        else:
            resolved = _resolve(mirror, tag, commit)
            if resolved is None:
                run_git(["fetch", "--quiet", "--prune", "--tags", "origin"], mirror, timeout=NETWORK_TIMEOUT)
                run_git(["fetch", "--quiet", "--prune", "origin"], mirror, timeout=NETWORK_TIMEOUT)
                resolved = _resolve(mirror, tag, commit)
    except GitFailed as exc:
        raise ProjectError(f"cannot fetch git source {location}: {exc.message}") from exc
    except OSError as exc:
        raise ProjectError(f"cannot fetch git source {location} into {cache_dir}: {exc}") from exc
    if resolved is None:
        raise ProjectError(_missing_pin_message(mirror, location, tag, commit, pin))
    checkout = cache_dir / "checkouts" / key / resolved
    if not checkout.exists():
        try:
            checkout.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=checkout.parent, prefix=".checkout-") as scratch:
                target = Path(scratch) / "tree"
                run_git(["clone", "--quiet", "--no-checkout", str(mirror), str(target)], scratch)
                run_git(["checkout", "--quiet", "--detach", resolved], target)
                _move_into_place(target, checkout)
        except GitFailed as exc:
            raise ProjectError(f"cannot check out {location} at {pin}: {exc.message}") from exc
    return checkout, resolved


def _move_into_place(source: Path, target: Path) -> None:
    """Rename a finished clone into the cache; another process that got there first wins."""
    try:
        source.rename(target)
    except OSError:
        if not target.exists():
            raise
        shutil.rmtree(source, ignore_errors=True)


def _missing_pin_message(mirror: Path, location: str, tag: str | None, commit: str | None, pin: str) -> str:
    if tag is not None:
        is_branch = run_git(["rev-parse", "--verify", "--quiet", f"refs/heads/{tag}"], mirror, check=False)
        if is_branch:
            return (
                f"{location} has no tag {tag!r}: {tag!r} is a branch, and a branch is not a pin; pin a tag or a commit"
            )
        tags = run_git(["tag", "--sort=-creatordate"], mirror, check=False).splitlines()[:5]
        known = f"; its newest tags are: {', '.join(tags)}" if tags else "; it has no tags"
        return f"{location} has no tag {tag!r}{known}"
    return f"{location} has no commit {commit!r}"


# -- changing a pin ----------------------------------------------------------------------------------------------

_TABLE_HEADER = re.compile(r"^\s*\[")
_MODELS_HEADER = re.compile(r"^\s*\[\[\s*models\s*\]\]\s*(#.*)?$")
_PIN_LINE = re.compile(r"^\s*(tag|commit)\s*=")
_GIT_LINE = re.compile(r"^(\s*)git\s*=")


def pin_source(
    path: Path, name: str, *, tag: str | None = None, commit: str | None = None, cache_dir: Path | None = None
) -> tuple[str, ModelSource]:
    """Pin git source ``name`` of project ``path`` to ``tag`` or ``commit``; returns the old pin (``tag v1.0`` or
    ``commit 3f2a...``) and the source as loaded with the new one.

    The project with the new pin is loaded first (fetched, resolved, imported), so a pin that does not exist or
    does not load is refused before the file changes. Only the ``tag``/``commit`` line of that source's
    ``[[models]]`` table is rewritten; comments and everything else stay as they were.
    """
    if (tag is None) == (commit is None):
        raise ProjectError("give exactly one of --tag or --commit")
    if commit is not None and not _HEX.match(commit):
        raise ProjectError(f"commit {commit!r} is not a commit hash (a branch is not a pin)")
    if tag is not None and (not tag.strip() or any(char in tag for char in '"\\\n')):
        raise ProjectError(f"tag {tag!r} is empty or holds a quote, backslash or line break; pin it by commit")
    path = Path(path)
    data = _read(path)
    entries = data.get("models")
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ProjectError(f"{path}: no [[models]] tables")
    names = [
        (entry.get("name") or _repo_name(entry["git"])) if isinstance(entry.get("git"), str) else None
        for entry in entries
    ]
    matches = [index for index, found in enumerate(names) if found == name]
    if not matches:
        known = ", ".join(repr(found) for found in names if found is not None) or "none"
        raise ProjectError(f"{path}: no git source named {name!r}; its git sources are: {known}")
    if len(matches) > 1:
        raise ProjectError(f"{path}: {len(matches)} git sources are named {name!r}; give them distinct name = ...")
    index = matches[0]
    entry = entries[index]
    old = f"tag {entry['tag']}" if "tag" in entry else f"commit {entry.get('commit')}"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if _MODELS_HEADER.match(line)]
    if len(headers) != len(entries):
        raise ProjectError(f"{path}: cannot rewrite the pin of a project not written as [[models]] tables; edit it")
    start = headers[index] + 1
    end = next((i for i in range(start, len(lines)) if _TABLE_HEADER.match(lines[i])), len(lines))
    block = [line for line in lines[start:end] if not _PIN_LINE.match(line)]
    git_at = next((i for i, line in enumerate(block) if _GIT_LINE.match(line)), None)
    if git_at is None:
        raise ProjectError(f"{path}: source {name!r} has no git = line to pin; edit it")
    indent = _GIT_LINE.match(block[git_at]).group(1)  # type: ignore[union-attr]
    block.insert(git_at + 1, indent + (f'tag = "{tag}"' if tag is not None else f'commit = "{commit}"') + "\n")
    new_text = "".join([*lines[:start], *block, *lines[end:]])
    # the project with the new pin must load (fetch, resolve, import) before the file changes
    scratch = _write_beside(path, new_text)
    try:
        after = load_project(scratch, cache_dir=cache_dir or _cache_dir_of(path, data))
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
    return old, after.sources[index]


def _cache_dir_of(path: Path, data: dict[str, Any]) -> Path:
    configured = data.get("cache_dir", DEFAULT_CACHE_DIR)
    return path.resolve().parent / str(configured)


def _write_beside(path: Path, text: str) -> Path:
    temporary = path.with_name(f".{path.stem}.new-{os.getpid()}.toml")
    temporary.write_text(text, encoding="utf-8")
    return temporary
