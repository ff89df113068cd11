"""The live model set of the service, and reloading it without ever serving a broken one.

A :class:`ServingSet` is one load of ``MODELS`` (a ``.py`` file, a dotted module or a project file, through
:func:`mlsm.lifecycle.prepare.prepare`, as ``mlsm run`` loads it) that passed the draft rule
(:func:`mlsm.lifecycle.release.release_gate`, whose provenance it keeps), planned into an :class:`~mlsm.Engine`, with
every model preflighted and none blocking (:attr:`mlsm.lifecycle.preflight.PreflightReport.blocking`: an active model
failing its basic example, every generated input, or storable output on most; with ``strict_preflight``, any
failure of any model). A model that fails on some inputs serves, its failures kept in the set's ``preflight``
reports: the engine isolates them in its result slot. :class:`LiveModels` holds the set that serves; a reload
loads ``MODELS`` again (a project file is read again, so a changed pin or source list takes effect; files, modules
and their helper modules are imported afresh), applies the draft rule, plans it, preflights every model, and only
when all of that passes swaps the whole set in one assignment. A request holds the set it started with until it
answers, so in-flight requests finish on their set. A failed reload raises :class:`~mlsm.errors.ReloadError` with
one reason per problem, and the previous set keeps serving.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from mlsm.engine import Engine
from mlsm.engine._timeouts import OnCall
from mlsm.errors import MlsmError, ReloadError
from mlsm.fields import as_field
from mlsm.lifecycle.preflight import PreflightReport, preflight_model
from mlsm.lifecycle.prepare import ReleaseGate, prepare
from mlsm.lifecycle.project import ModelSet
from mlsm.lifecycle.provenance import code_digest, file_digest
from mlsm.models import Model, SummaryModel
from mlsm.service.settings import ServiceSettings

__all__ = ["LiveModels", "ServingSet", "load_serving_set", "load_serving_set_within", "settings_changes"]


@dataclass(eq=False)
class ServingSet:
    """One loaded, gated, planned and preflighted set of models; immutable once built."""

    generation: int  # 1 for the set the service started with, +1 per successful reload
    engine: Engine
    source: str  # MODELS as given: a file, a module or a project file
    source_hash: str  # sha256 of every source's models file and the helper modules it imported from its folder
    loaded_at: float
    trigger: str  # startup, api (POST /v1/admin/reload) or SIGHUP
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)  # release_gate's: the code of this set
    model_set: ModelSet | None = field(default=None, repr=False)  # the sources and the project's settings
    preflight: dict[str, PreflightReport] = field(default_factory=dict, repr=False)  # by name@version

    @property
    def modules(self) -> tuple[ModuleType, ...]:
        """The modules the set's models were imported in, one per source."""
        if self.model_set is None:
            return ()
        return tuple(source.module for source in self.model_set.sources if source.module is not None)

    @property
    def module(self) -> ModuleType | None:
        """The module of the first source (the only one unless ``MODELS`` is a project)."""
        return self.modules[0] if self.modules else None

    @property
    def has_batch_models(self) -> bool:
        """True when some model takes a frame (its records are worth grouping)."""
        return any(model.scores_frames for model in self.engine.all_models)

    @functools.cached_property
    def description(self) -> dict[str, Any]:
        """What ``GET /v1/models`` shows for this set (computed once)."""
        return {
            "generation": self.generation,
            "source": self.source,
            "source_hash": self.source_hash,
            "loaded_at": _iso(self.loaded_at),
            "trigger": self.trigger,
            "models": [self._describe_model(model) for model in self.engine.all_models],
        }

    def _describe_model(self, model: Model) -> dict[str, Any]:
        code = self.provenance.get("models", {}).get(model.key, {})
        info: dict[str, Any] = {
            "name": model.name,
            "version": model.version,
            "key": model.key,
            "status": model.status,
            "kind": model.kind,
            "batch": model.scores_frames,
            "fields": {name: as_field(spec).to_dict() for name, spec in model.fields.items()},
            "timeout": self.engine.timeouts.get(model.key),
            "source_hash": code.get("sha256") or self.source_hash,  # the hash the run's provenance records
        }
        if code.get("git"):
            git = code["git"]
            info["git"] = {key: git.get(key) for key in ("commit", "branch", "tags", "dirty")}
        if self.model_set is not None and self.model_set.project is not None:
            info["origin"] = self.model_set.source_of(model).label
        if isinstance(model, SummaryModel):
            info["needs"] = model.needs()
        report = self.preflight.get(model.key)
        if report is not None:
            info["preflight"] = report.to_dict()
        return info

    def close(self) -> None:
        """Forget the set's modules (so they can be freed once no request holds the set) and its idle threads."""
        self.engine.close()
        _forget_modules(self.model_set)


def load_serving_set(
    settings: ServiceSettings, *, generation: int, trigger: str, on_call: OnCall | None = None
) -> ServingSet:
    """Load ``settings.models`` afresh, apply the draft rule, plan it and preflight every model.

    ``ReloadError`` listing every problem (a model whose preflight blocks it, or with ``settings.strict_preflight``
    fails at all, is one); for the draft rule its message is the one line ``mlsm run`` prints (naming the model, the
    branch and the fix).
    """
    gate = ReleaseGate(settings.release_branches, allow_unreleased=settings.allow_unreleased)
    refuse = functools.partial(_not_prepared, settings.models)
    prepared = prepare(settings.models, gate, timeout=settings.model_timeout, on_call=on_call, refuse=refuse)
    model_set, engine, provenance = prepared.model_set, prepared.engine, prepared.provenance
    reasons = []
    reports: dict[str, PreflightReport] = {}
    models = engine.all_models
    for i, model in enumerate(models):
        try:
            report = reports[model.key] = preflight_model(model, upstream=models[:i])
        except Exception as exc:  # a preflight that breaks is a failed preflight
            reasons.append(f"{model.key}: preflight could not run: {type(exc).__name__}: {exc}")
            continue
        reason = _refusal(report, strict=settings.strict_preflight)
        if reason is not None:
            reasons.append(reason)
    if reasons:
        engine.close()
        _forget_modules(model_set)
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        message = f"{len(reasons)} of {len(models)} models failed their preflight: {reasons[0]}{more}"
        raise ReloadError(message, reasons)
    return ServingSet(
        generation=generation,
        engine=engine,
        source=settings.models,
        source_hash=_source_hash(model_set),
        loaded_at=time.time(),
        trigger=trigger,
        provenance=provenance,
        model_set=model_set,
        preflight=reports,
    )


def _not_prepared(models: str, step: str, exc: MlsmError, model_set: ModelSet | None) -> ReloadError:
    """The ``ReloadError`` for a failed step of :func:`~mlsm.lifecycle.prepare.prepare`; a set that loaded but
    failed the draft rule or its plan has its modules forgotten."""
    if step == "load":
        return ReloadError(f"cannot load models: {exc}", [str(exc)])
    _forget_modules(model_set)
    if step == "release":
        return ReloadError(str(exc), [str(exc)])
    return ReloadError(f"{models!r} does not define a usable model set: {exc}", [str(exc)])


def _refusal(report: PreflightReport, *, strict: bool = False) -> str | None:
    """Why a model's preflight refuses its set, in one line (None: it may serve): when it blocks, or with
    ``strict`` when it failed at all."""
    if report.passed or not (strict or report.blocking):
        return None
    first = report.failures[0].describe()
    first = first if len(first) <= 300 else first[:297] + "..."
    if report.blocking:
        why = "; ".join(report.blocking)
        return f"{report.model}: active model refused, {why} ({report.outcome}); first: {first}"
    return f"{report.model}: {report.outcome} (--strict-preflight refuses any failure); first: {first}"


def settings_changes(previous: ServingSet, fresh: ServingSet) -> list[str]:
    """What changed in the project's settings that a reload cannot apply (the service keeps its first ones)."""
    if previous.model_set is None or fresh.model_set is None:
        return []
    before, after = previous.model_set.settings, fresh.model_set.settings
    changed = [f"[defaults] {name}" for name in ("id_field", "store") if getattr(before, name) != getattr(after, name)]
    changed += [
        f"[service] {key}" for key in sorted(set(before.service) | set(after.service))
        if before.service.get(key) != after.service.get(key)
    ]  # fmt: skip
    return [f"{item} changed in the project file: it takes effect when mlsm serve restarts" for item in changed]


class LiveModels:
    """The model set that serves now, swapped whole by :meth:`reload`; one reload runs at a time."""

    def __init__(self, first: ServingSet, *, settings: ServiceSettings, on_call: OnCall | None):
        self.current = first
        self._settings = settings
        self._on_call = on_call
        self._lock = asyncio.Lock()
        self.last_reload: dict[str, Any] | None = None

    async def reload(self, trigger: str) -> tuple[ServingSet, ServingSet]:
        """Load ``MODELS`` again and swap it in when every check passes; returns ``(previous, new)``.

        Raises ``ReloadError`` (the current set stays live) when the load, the draft rule, the plan or a preflight
        fails, or when loading takes longer than the reload time limit.
        """
        async with self._lock:
            previous = self.current
            started = time.time()
            try:
                fresh = await self._load(previous, trigger)
            except ReloadError as exc:
                self.last_reload = {"at": _iso(started), "trigger": trigger, "ok": False, "reasons": exc.reasons}
                raise
            self.current = fresh  # the swap: requests that already hold `previous` keep it until they answer
            self.last_reload = {"at": _iso(started), "trigger": trigger, "ok": True, "generation": fresh.generation}
            previous.close()
            return previous, fresh

    async def _load(self, previous: ServingSet, trigger: str) -> ServingSet:
        return await asyncio.to_thread(
            load_serving_set_within,
            self._settings.reload_timeout,
            self._settings,
            generation=previous.generation + 1,
            trigger=trigger,
            on_call=self._on_call,
        )


def load_serving_set_within(seconds: float, settings: ServiceSettings, **options: Any) -> ServingSet:
    """:func:`load_serving_set` with a time limit: ``ReloadError`` when loading, fetching or a preflight takes
    longer than ``seconds`` (a model file or model that hangs); the stuck loading thread is abandoned."""
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(load_serving_set(settings, **options))
        except BaseException as exc:
            outcome.append(exc)

    # a thread of its own, not a pool's: a model file that hangs on import must not take a worker with it
    thread = threading.Thread(target=work, name="mlsm-load-models", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        message = f"loading the models did not finish within {seconds:g} s (an import or a preflight hangs)"
        raise ReloadError(message, [message])
    result = outcome[0]
    if isinstance(result, ReloadError):
        raise result
    if isinstance(result, BaseException):
        message = f"loading the models failed: {type(result).__name__}: {result}"
        raise ReloadError(message, [message]) from result
    loaded: ServingSet = result
    return loaded


def _forget_modules(model_set: ModelSet | None) -> None:
    """Drop a set's models modules from ``sys.modules`` (when they are still the ones registered there)."""
    if model_set is None:
        return
    for source in model_set.sources:
        module = source.module
        if module is not None and sys.modules.get(module.__name__) is module:
            del sys.modules[module.__name__]


def _source_hash(model_set: ModelSet) -> str:
    """One code hash of the whole set: each source's models file (the bytes its import ran) and helper modules."""
    loaded = model_set.digests()
    parts = []
    for source in model_set.sources:
        files = [source.path] if source.path is not None else []
        for path in [*files, *sorted(source.helpers.values())]:
            try:
                parts.append(loaded.get(path) or file_digest(path))
            except OSError:
                parts.append(f"unreadable {path}")
    return code_digest(part.encode() for part in parts)


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
