"""Models made ready to score: ``MODELS`` loaded, its code accepted, and planned into an engine, in one call.

``prepare(spec, gate)`` is what every entry point does before it scores: ``mlsm run`` and ``mlsm serve`` (at start
and on every reload) load ``MODELS`` through :func:`mlsm.lifecycle.project.load_model_set`, pass the draft rule
(:func:`mlsm.lifecycle.release.release_gate`, a :class:`ReleaseGate`) and plan the :class:`~mlsm.engine.Engine`;
the worker processes and Ray actors of a run that started load the same ``MODELS``, plan it and accept it only
when it is the run's models and code (:class:`SameCode`), so no result is attributed to code that did not produce
it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from mlsm.engine import Engine
from mlsm.engine._timeouts import OnCall
from mlsm.errors import MlsmError, ModelLoadError, UnreleasedModelError
from mlsm.lifecycle.project import ModelSet, load_model_set
from mlsm.lifecycle.provenance import check_same_code, model_digests
from mlsm.lifecycle.release import release_gate, release_policy

__all__ = ["STEPS", "Prepared", "Refuse", "ReleaseGate", "SameCode", "prepare"]

#: The steps of :func:`prepare`, as a failure names them: loading ``MODELS``, the draft rule (a
#: :class:`ReleaseGate`), planning the engine, comparing with a run's models and code (a :class:`SameCode`).
STEPS = ("load", "release", "plan", "check")

#: What a caller raises instead of a step's error: ``refuse(step, error, model_set)`` (``model_set`` is None when
#: loading failed).
Refuse = Callable[[str, MlsmError, ModelSet | None], BaseException]


@dataclass(frozen=True)
class ReleaseGate:
    """The draft rule as a command that starts applies it: ``branches`` (``--release-branches``) replacing the
    project's release branches when given, and ``allow_unreleased`` (``--allow-unreleased``)."""

    branches: tuple[str, ...] | None = None
    allow_unreleased: bool = False


@dataclass(frozen=True)
class SameCode:
    """The code of a run that already started: the models it planned (``keys``, in order; empty: any) and the code
    hash it recorded for each (``(key, sha256)`` pairs); ``who`` loads them again, for messages."""

    keys: tuple[str, ...] = ()
    digests: tuple[tuple[str, str], ...] = ()
    who: str = "a worker process"


@dataclass
class Prepared:
    """A loaded, accepted and planned model set: its ``model_set`` (sources, settings), the ``engine`` and the
    ``provenance`` a run records (``release_gate``'s; empty under :class:`SameCode`: the run recorded it)."""

    model_set: ModelSet
    engine: Engine
    provenance: dict[str, Any] = field(default_factory=dict)


def prepare(
    spec: str,
    gate: ReleaseGate | SameCode,
    *,
    timeout: float | Mapping[str, float] | None = None,
    on_call: OnCall | None = None,
    refuse: Refuse | None = None,
) -> Prepared:
    """Load ``spec`` (a ``.py`` file, a dotted module or a project file), accept its code by ``gate``, and plan it
    (``timeout`` and ``on_call`` as :class:`~mlsm.engine.Engine` takes them).

    A step that fails raises its own one-line error: the loader's, ``UnreleasedModelError`` from the draft rule,
    the engine's for a set it cannot plan, ``ModelLoadError``/``ModelCodeChanged`` for other models or code than the
    run's; with ``refuse``, what ``refuse`` returns for it instead (see :data:`STEPS`).
    """
    try:
        model_set = load_model_set(spec)
    except MlsmError as exc:
        _failed(refuse, "load", exc, None)
    provenance: dict[str, Any] = {}
    if isinstance(gate, ReleaseGate):
        try:
            policy = release_policy(model_set, gate.branches)
            provenance = release_gate(model_set, policy=policy, allow_unreleased=gate.allow_unreleased)
        except UnreleasedModelError as exc:
            _failed(refuse, "release", exc, model_set)
    try:
        engine = Engine(model_set.models, timeout=timeout, on_call=on_call)
    except MlsmError as exc:
        _failed(refuse, "plan", exc, model_set)
    if isinstance(gate, SameCode):
        try:
            _check_same_code(spec, gate, model_set, engine)
        except MlsmError as exc:
            _failed(refuse, "check", exc, model_set)
    return Prepared(model_set, engine, provenance)


def _check_same_code(spec: str, gate: SameCode, model_set: ModelSet, engine: Engine) -> None:
    keys = tuple(model.key for model in engine.all_models)
    if gate.keys and keys != gate.keys:
        raise ModelLoadError(
            f"{spec!r} changed while the run started: the run has {', '.join(gate.keys)}, "
            f"{gate.who} loaded {', '.join(keys)}"
        )
    if gate.digests:
        loaded = model_digests(engine.all_models, default_files=model_set.files(), loaded=model_set.digests())
        check_same_code(dict(gate.digests), loaded, gate.who)


def _failed(refuse: Refuse | None, step: str, exc: MlsmError, model_set: ModelSet | None) -> NoReturn:
    if refuse is None:
        raise exc
    raise refuse(step, exc, model_set) from exc
