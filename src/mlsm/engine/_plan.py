"""A model set checked and planned once, before any record is scored.

Checked: every model's name, status, function and fields; each ``name@version`` once; every summary model's
dependencies among the models before it; the time limits. Planned: one :class:`Step` per model, in the order models
run (plain models, then summary models), and one :class:`~mlsm.fields.FieldCheck` per distinct field, shared by the
models that read it.

Models are recognised by what they have, not by their class, so that the engine never imports :mod:`mlsm.models`
(which imports the engine): a model has ``name``, ``version``, ``fcn``, ``status``, ``fields`` and ``kind``;
a summary model's ``kind`` is ``"summary"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard, cast

from mlsm.engine._timeouts import CallPool, ModelCaller, OnCall
from mlsm.errors import ModelDefinitionError, SummaryModelListException
from mlsm.fields import FieldCheck, compile_fields

if TYPE_CHECKING:
    from mlsm.models import Model, SummaryModel

__all__ = ["LAYOUTS", "STATUSES", "Plan", "Step", "is_summary", "plan", "single_step"]

#: The statuses a model may have. ``draft`` models run and store results beside ``active`` ones.
STATUSES = ("draft", "active")

#: Record layouts: ``flat`` (each model reads its fields from the record) or the seed's ``nested``
#: (``record['data'][model.name][model.version]``).
LAYOUTS = ("flat", "nested")

_MODEL_KINDS = ("model", "summary")
_MODEL_ATTRIBUTES = ("name", "version", "fcn", "status", "fields")


def is_summary(model: Model) -> TypeGuard[SummaryModel]:
    """True for a summary model (``kind`` ``"summary"``): it runs after the plain models and sees their results."""
    return model.kind == "summary"


@dataclass(eq=False)
class Step:
    """One model of a planned set: its compiled checks and where its fields sit among the engine's checks."""

    model: Model
    checks: list[FieldCheck]
    slots: list[int]  # index into Plan.checks for each of self.checks
    names: tuple[str, ...]
    call: Callable[..., Any]  # model.fcn, or a ModelCaller adding a time limit and timing

    @property
    def batch(self) -> bool:
        return self.model.scores_frames

    @property
    def columns(self) -> bool:
        """A batch model that takes a dict of column arrays instead of a DataFrame (``batch="columns"``)."""
        return bool(getattr(self.model, "takes_columns", False))


@dataclass(eq=False)
class Plan:
    """A checked model set: its models in running order, each model's time limit, the distinct field checks, one
    step per model, and the pool of threads time limits use (None without time limits)."""

    models: tuple[Model, ...]
    summary_models: tuple[SummaryModel, ...]
    timeouts: dict[str, float | None]
    checks: list[FieldCheck]
    steps: list[Step]
    pool: CallPool | None


def plan(
    models: Iterable[Model],
    summary_models: Iterable[SummaryModel],
    *,
    timeout: float | Mapping[str, float] | None,
    on_call: OnCall | None,
) -> Plan:
    """Check a model set and plan it; ``ModelDefinitionError`` (or ``SummaryModelListException``) on the first
    problem. Summary models found in ``models`` run after the plain ones, in their order."""
    everything: list[Model] = [*models, *summary_models]
    # anything that is not a summary model counts as plain here, so that _check_models reports it
    plain = [m for m in everything if getattr(m, "kind", None) != "summary"]
    summaries = [cast("SummaryModel", m) for m in everything if getattr(m, "kind", None) == "summary"]
    _check_models([*plain, *summaries])
    _check_summaries(plain, summaries)
    timeouts = _resolve_timeouts(timeout, [*plain, *summaries])
    limits = [t for t in timeouts.values() if t is not None]
    pool = CallPool(min(limits)) if limits else None
    checks: list[FieldCheck] = []
    index: dict[tuple[str, Any], int] = {}
    steps: list[Step] = []
    for model in (*plain, *summaries):
        model_checks = compile_fields(model.fields)
        slots = []
        for check in model_checks:
            key = (check.name, check.field)
            if key not in index:
                index[key] = len(checks)
                checks.append(check)
            slots.append(index[key])
        step = Step(model, model_checks, slots, tuple(c.name for c in model_checks), model.fcn)
        seconds = timeouts[model.key]
        if pool is not None or on_call is not None:  # under time limits every call is known to the run (replays)
            step.call = ModelCaller(model.key, model.fcn, seconds=seconds, pool=pool, on_call=on_call, batch=step.batch)
        steps.append(step)
    return Plan(tuple(plain), tuple(summaries), timeouts, checks, steps, pool)


def single_step(model: Model) -> Step:
    """The step of one model scored on its own (``Model.execute``), unchecked as the original package was."""
    checks = compile_fields(model.fields)
    return Step(model, checks, [], tuple(check.name for check in checks), model.fcn)


# -- the checks ---------------------------------------------------------------------------------------------------


def _is_model(value: Any) -> bool:
    return getattr(value, "kind", None) in _MODEL_KINDS and all(hasattr(value, name) for name in _MODEL_ATTRIBUTES)


def _check_models(models: Sequence[Model]) -> None:
    seen: set[str] = set()
    for model in models:
        if not _is_model(model):
            raise ModelDefinitionError(f"expected Model or SummaryModel objects, got {type(model).__name__}: {model!r}")
        if not isinstance(model.name, str) or not model.name:
            raise ModelDefinitionError(f"model name must be a non-empty string, got {model.name!r}")
        if model.status not in STATUSES:
            raise ModelDefinitionError(
                f"model {model.key!r}: invalid status {model.status!r}; valid statuses are: "
                + ", ".join(repr(s) for s in STATUSES)
            )
        if not callable(model.fcn):
            raise ModelDefinitionError(f"model {model.key!r}: fcn must be callable, got {model.fcn!r}")
        batch = getattr(model, "batch", False)
        if not (isinstance(batch, bool) or batch == "columns"):
            raise ModelDefinitionError(
                f"model {model.key!r}: batch must be False, True (a DataFrame) or 'columns' (a dict of arrays), "
                f"got {batch!r}"
            )
        if not isinstance(model.fields, Mapping):
            raise ModelDefinitionError(
                f"model {model.key!r}: fields must map field names to types, got {type(model.fields).__name__}"
            )
        if model.key in seen:
            raise ModelDefinitionError(f"duplicate model {model.key!r} in one run: each name@version may appear once")
        seen.add(model.key)


def _check_summaries(models: Sequence[Model], summaries: Sequence[SummaryModel]) -> None:
    available = {model.key for model in models}
    missing: list[str] = []
    for summary in summaries:
        try:
            needs = summary.needs()
        except (KeyError, TypeError) as exc:
            raise ModelDefinitionError(
                f"summary model {summary.key!r}: models must be a list of {{'name': ..., 'version': ...}}, "
                f"got {summary.models!r}"
            ) from exc
        for need in needs:
            if need not in available:
                missing.append(f"{need} (needed by {summary.key})")
        available.add(summary.key)
    if missing:
        raise SummaryModelListException("summary models need models that are not in this run: " + ", ".join(missing))


def _resolve_timeouts(timeout: float | Mapping[str, float] | None, models: Sequence[Model]) -> dict[str, float | None]:
    """Each model's time limit in seconds (None: none), from one number or a mapping by key, name or ``*``."""
    if timeout is None:
        return {model.key: None for model in models}
    if not isinstance(timeout, Mapping):
        return {model.key: _timeout_value("timeout", timeout) for model in models}
    keys = {model.key for model in models} | {model.name for model in models} | {"*"}
    unknown = [name for name in timeout if name not in keys]
    if unknown:
        raise ModelDefinitionError(
            f"timeout given for unknown model {unknown[0]!r}; valid keys are: {', '.join(sorted(keys))}"
        )
    resolved: dict[str, float | None] = {}
    for model in models:
        for name in (model.key, model.name, "*"):
            if name in timeout:
                resolved[model.key] = _timeout_value(f"timeout[{name!r}]", timeout[name])
                break
        else:
            resolved[model.key] = None
    return resolved


def _timeout_value(label: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value:
        raise ModelDefinitionError(f"invalid {label} {value!r}: expected a number of seconds greater than 0")
    return float(value)
