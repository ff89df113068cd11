"""The live model set of the service, and reloading it without ever serving a broken one.

A :class:`ModelSet` is one import of the model source, planned into an :class:`~mlsm.Engine`, with every model's
preflight passed. :class:`LiveModels` holds the set that serves; a reload imports the source again into a fresh
module (helper modules from the model file's folder are imported afresh too), plans it, preflights every model,
and only when all of that passes swaps the whole set in one assignment. A request holds the set it started with
until it answers, so in-flight requests finish on their set. A failed reload raises
:class:`~mlsm.errors.ReloadError` with one reason per problem, and the previous set keeps serving.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..engine import Engine
from ..errors import MlsmError, ReloadError
from ..fields import MISSING, as_field
from ..loader import LoadedModels, load_models
from ..models import Model, SummaryModel
from ..preflight import preflight_model
from ..timeouts import OnCall

__all__ = ["LiveModels", "ModelSet", "load_model_set", "load_model_set_within"]


@dataclass(eq=False)
class ModelSet:
    """One loaded, planned and preflighted set of models; immutable once built."""

    generation: int  # 1 for the set the service started with, +1 per successful reload
    engine: Engine
    source: str
    source_hash: str  # sha256 of the model file and the helper modules it imported from its folder
    loaded_at: float
    trigger: str  # startup, api (POST /v1/admin/reload) or SIGHUP
    module: ModuleType | None = field(default=None, repr=False)
    helper_modules: tuple[str, ...] = ()

    @property
    def has_batch_models(self) -> bool:
        """True when some model takes a frame (its records are worth grouping)."""
        return any(model.batch and not isinstance(model, SummaryModel) for model in self.engine.all_models)

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
        info: dict[str, Any] = {
            "name": model.name,
            "version": model.version,
            "key": model.key,
            "status": model.status,
            "kind": model.kind,
            "batch": bool(model.batch),
            "fields": {name: describe_field(spec) for name, spec in model.fields.items()},
            "timeout": self.engine.timeouts.get(model.key),
            "source_hash": _function_file_hash(model) or self.source_hash,
        }
        if isinstance(model, SummaryModel):
            info["needs"] = model.needs()
        return info

    def close(self) -> None:
        """Forget the set's module (so it can be freed once no request holds the set) and its idle threads."""
        self.engine.close()
        if self.module is not None and sys.modules.get(self.module.__name__) is self.module:
            del sys.modules[self.module.__name__]


def describe_field(spec: Any) -> dict[str, Any]:
    """A field's rules as JSON: type, required, nullable and the constraints that are set."""
    f = as_field(spec)
    info: dict[str, Any] = {"type": getattr(f.type, "__name__", str(f.type)), "required": f.required}
    if f.nullable:
        info["nullable"] = True
    for name in ("ge", "le"):
        if getattr(f, name) is not None:
            info[name] = getattr(f, name)
    if f.choices is not None:
        info["choices"] = list(f.choices)
    if f.default is not MISSING:
        info["default"] = f.default
    return info


def load_model_set(
    source: str,
    *,
    generation: int,
    trigger: str,
    timeout: float | None,
    on_call: OnCall | None = None,
) -> ModelSet:
    """Import ``source`` afresh, plan it and preflight every model; ``ReloadError`` listing every problem."""
    # the loader imports the file and its helper modules afresh every time (and forgets the helpers after)
    try:
        loaded = load_models(source)
    except MlsmError as exc:
        raise ReloadError(f"cannot load models: {exc}", [str(exc)]) from exc
    helpers = loaded.helpers

    def give_up(error: ReloadError) -> ReloadError:
        sys.modules.pop(loaded.module.__name__, None)
        return error

    try:
        engine = Engine(loaded.models, timeout=timeout, on_call=on_call)
    except MlsmError as exc:
        raise give_up(ReloadError(f"{source!r} does not define a usable model set: {exc}", [str(exc)])) from exc
    reasons = []
    models = engine.all_models
    for i, model in enumerate(models):
        try:
            report = preflight_model(model, upstream=models[:i])
        except Exception as exc:  # a preflight that breaks is a failed preflight
            reasons.append(f"{model.key}: preflight could not run: {type(exc).__name__}: {exc}")
            continue
        if not report.passed:
            first = report.first_failure
            first = first if len(first) <= 300 else first[:297] + "..."
            reasons.append(
                f"{model.key}: preflight failed on {len(report.failures)} of {report.examples} inputs; first: {first}"
            )
    if reasons:
        engine.close()
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        message = f"{len(reasons)} of {len(models)} models failed their preflight: {reasons[0]}{more}"
        raise give_up(ReloadError(message, reasons))
    return ModelSet(
        generation=generation,
        engine=engine,
        source=source,
        source_hash=_source_hash(loaded, helpers),
        loaded_at=time.time(),
        trigger=trigger,
        module=loaded.module,
        helper_modules=tuple(sorted(helpers)),
    )


class LiveModels:
    """The model set that serves now, swapped whole by :meth:`reload`; one reload runs at a time."""

    def __init__(self, first: ModelSet, *, timeout: float | None, on_call: OnCall | None, reload_timeout: float):
        self.current = first
        self._timeout = timeout
        self._on_call = on_call
        self._reload_timeout = reload_timeout
        self._lock = asyncio.Lock()
        self.last_reload: dict[str, Any] | None = None

    async def reload(self, trigger: str) -> tuple[ModelSet, ModelSet]:
        """Load the source again and swap it in when every check passes; returns ``(previous, new)``.

        Raises ``ReloadError`` (the current set stays live) when the import, the plan or a preflight fails, or
        when loading takes longer than the reload time limit.
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

    async def _load(self, previous: ModelSet, trigger: str) -> ModelSet:
        return await asyncio.to_thread(
            load_model_set_within,
            self._reload_timeout,
            previous.source,
            generation=previous.generation + 1,
            trigger=trigger,
            timeout=self._timeout,
            on_call=self._on_call,
        )


def load_model_set_within(seconds: float, source: str, **options: Any) -> ModelSet:
    """:func:`load_model_set` with a time limit: ``ReloadError`` when the import or a preflight takes longer
    than ``seconds`` (a model file or model that hangs); the stuck loading thread is abandoned."""
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(load_model_set(source, **options))
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
    loaded: ModelSet = result
    return loaded


def _source_hash(loaded: LoadedModels, helpers: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    files = [loaded.path] if loaded.path is not None else []
    files += sorted(helpers.values())
    for path in files:
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(str(path).encode())
    return "sha256:" + digest.hexdigest()


def _function_file_hash(model: Model) -> str | None:
    try:
        file = inspect.getsourcefile(model.fcn)
    except TypeError:
        return None
    if not file:
        return None
    try:
        return "sha256:" + hashlib.sha256(Path(file).read_bytes()).hexdigest()
    except OSError:
        return None


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
