"""A run's drift profile: per declared input field its count, missing and invalid rows and its values' distribution,
and per model@version its error count and the distribution of each numeric output.

Computed per chunk where the chunk is scored (this process, a worker process or a Ray actor) from the chunk's Arrow
columns and its results, and merged exactly (:mod:`mlsm.evaluation._drift`), so a run's profile is the same
whatever its chunks were scored by and however often it was resumed. Committed with the run's progress
(``Counts.profile``) on every chunk.

Fields are checked by the same conversion the engine applies (:meth:`FieldCheck.convert_column`; the engine's own
converted columns are read when it hands them over, :class:`Conversions`, rather than converting twice), with one
difference: a missing value counts as missing even when the field has a default (the engine uses the default) or is
required (the engine refuses the record). Invalid rows are those whose value the field's type, bounds or choices
refuse. When two models declare the same field name with different rules, the first declaration is the one profiled.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from mlsm.engine import Engine
from mlsm.evaluation._drift import CategoricalProfile, NumericProfile, Profile, profile_from_json
from mlsm.fields import MISSING, MISSING_REQUIRED, ColumnResult, Field, FieldCheck, as_field

__all__ = [
    "PROFILE_ENV",
    "Conversions",
    "ModelProfile",
    "RunProfile",
    "Sample",
    "profile_chunk",
    "profile_records",
    "profile_samples",
    "profile_steps",
]

#: Set to ``off`` to score without profiles: only for measuring what profiles cost (``benchmarks/bench_profiles.py
#: run``); a run scored so has no profile, and ``mlsm drift`` says so.
PROFILE_ENV = "MLSM_PROFILE"

_FORMAT = 1
_NUMBERS = frozenset({int, float})
_NUMBER_TYPES = _NUMBERS | {type(None)}


@dataclass(frozen=True)
class ModelProfile:
    """One model@version over a run: rows scored, rows with an error, and each numeric output key's profile (over
    the rows without an error; a row lacking the key, or holding None, counts as missing, a non-number as
    invalid)."""

    rows: int = 0
    errors: int = 0
    outputs: dict[str, NumericProfile] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        """The share of rows with an error (NaN when no rows)."""
        return self.errors / self.rows if self.rows else float("nan")

    def merge(self, other: ModelProfile) -> ModelProfile:
        """Both profiles' rows together."""
        return ModelProfile(
            self.rows + other.rows, self.errors + other.errors, _merge_maps(self.outputs, other.outputs)
        )


@dataclass(frozen=True)
class RunProfile:
    """A run's (or a chunk's) profile: ``rows`` scored, ``fields`` by name (numbers: ``NumericProfile``; text,
    choices and bools: ``CategoricalProfile``) with each field's declared type in ``types``, and ``models`` by
    ``name@version``. Merges exactly; ``to_json``/``from_json`` round-trip."""

    rows: int = 0
    fields: dict[str, Profile] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelProfile] = field(default_factory=dict)

    def merge(self, other: RunProfile) -> RunProfile:
        """The profile of both profiles' rows together (fields and models of either; the same ones merged)."""
        return RunProfile(
            rows=self.rows + other.rows,
            fields=_merge_maps(self.fields, other.fields),
            types={**other.types, **self.types},
            models=_merge_maps(self.models, other.models),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict; names (fields, output keys) are values, never keys, so any name fits any store."""
        return {
            "format": _FORMAT,
            "rows": self.rows,
            "fields": [
                {"field": name, "type": self.types.get(name), "profile": profile.to_json()}
                for name, profile in self.fields.items()
            ],
            "models": [
                {
                    "model": key,
                    "rows": model.rows,
                    "errors": model.errors,
                    "outputs": [{"key": k, "profile": p.to_json()} for k, p in model.outputs.items()],
                }
                for key, model in self.models.items()
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunProfile:
        """The profile ``to_json`` wrote; ``ValueError`` when it is not one."""
        try:
            if data["format"] != _FORMAT:
                raise ValueError(f"profile format {data['format']!r}, this mlsm reads {_FORMAT}")
            fields = {item["field"]: profile_from_json(item["profile"]) for item in data["fields"]}
            types = {item["field"]: item["type"] for item in data["fields"] if item.get("type") is not None}
            models = {}
            for item in data["models"]:
                outputs = {}
                for output in item["outputs"]:
                    profile = profile_from_json(output["profile"])
                    if not isinstance(profile, NumericProfile):
                        raise ValueError(f"output {output['key']!r} of {item['model']!r} is not a numeric profile")
                    outputs[output["key"]] = profile
                models[item["model"]] = ModelProfile(int(item["rows"]), int(item["errors"]), outputs)
            return cls(int(data["rows"]), fields, types, models)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a run profile written by RunProfile.to_json: {exc!r}") from exc


def _merge_maps(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(a)
    for key, value in b.items():
        mine = merged.get(key)
        if mine is None:
            merged[key] = value
        elif type(mine) is type(value):
            merged[key] = mine.merge(value)
        # a field profiled as numbers in one part and as text in another (its declaration changed): the first wins
    return merged


# --- computing one chunk's profile ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """What to profile for one engine: each field's profiling check and kind, and each model's result slot."""

    fields: tuple[tuple[str, FieldCheck, str], ...]  # name, check, kind: number | text | bool | other
    models: tuple[tuple[str, str, str], ...]  # key, name, version


_plans: weakref.WeakKeyDictionary[Engine, _Plan] = weakref.WeakKeyDictionary()


def _plan(engine: Engine) -> _Plan:
    plan = _plans.get(engine)
    if plan is None:
        seen: dict[str, tuple[str, FieldCheck, str]] = {}
        for model in engine.all_models:
            for name, spec in model.fields.items():
                if name in seen:
                    continue
                declared = as_field(spec)
                # optional and without default: a missing value stays missing, whatever the engine makes of it
                check = FieldCheck(
                    name, Field(declared.type, required=False, ge=declared.ge, le=declared.le, choices=declared.choices)
                )
                kind = {int: "number", float: "number", str: "text", bool: "bool"}.get(declared.type, "other")
                seen[name] = (name, check, kind)
        models = tuple((model.key, model.name, model.version) for model in engine.all_models)
        plan = _plans[engine] = _Plan(tuple(seen.values()), models)
    return plan


class Conversions:
    """Collects the columns the engine converted for one chunk (``Engine.score_columns(on_converted=...)``): the
    first check and converted column of each field name, for :func:`profile_chunk`."""

    def __init__(self) -> None:
        self.columns: dict[str, tuple[FieldCheck, ColumnResult]] = {}

    def __call__(self, checks: Sequence[FieldCheck], converted: Sequence[ColumnResult]) -> None:
        for check, column in zip(checks, converted):
            self.columns.setdefault(check.name, (check, column))

    def usable(self, name: str) -> ColumnResult | None:
        """The engine's converted column of field ``name`` as the profile reads it, or None when there is none or
        the field has a default (which hides the values that were missing: the profile converts those again)."""
        check, converted = self.columns.get(name, (None, None))
        if check is None or check.field.default is not MISSING:
            return None
        return converted


def profiles_enabled() -> bool:
    """False when ``MLSM_PROFILE=off`` (benchmarks only)."""
    return os.environ.get(PROFILE_ENV, "").lower() != "off"


def profile_chunk(
    engine: Engine,
    columns: Mapping[str, Any],
    length: int,
    results: Sequence[Mapping[str, Any]],
    conversions: Conversions | None = None,
) -> RunProfile | None:
    """The profile of one scored chunk: its ``columns`` (Arrow arrays or lists, by field name), the engine's
    ``results`` for them and, when collected, the engine's ``conversions`` of them; None when profiles are off."""
    if not profiles_enabled():
        return None
    plan = _plan(engine)
    fields: dict[str, Profile] = {}
    types: dict[str, str] = {}
    for name, check, kind in plan.fields:
        converted = conversions.usable(name) if conversions is not None else None
        if converted is None:  # converted again, as an optional field
            converted = check.convert_column(columns.get(name), length)
        fields[name] = _field_profile(converted, kind, columns.get(name))
        types[name] = _type_name(check)
    models = {key: _model_profile(results, name, version) for key, name, version in plan.models}
    return RunProfile(length, fields, types, models)


def profile_records(
    engine: Engine, records: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]
) -> RunProfile | None:
    """The profile of records scored one at a time (the service): their fields as columns, then
    :func:`profile_chunk`."""
    if not profiles_enabled():
        return None
    names = [name for name, _, _ in _plan(engine).fields]
    columns = {name: [record.get(name) for record in records] for name in names}
    return profile_chunk(engine, columns, len(records), results)


@dataclass(frozen=True)
class Sample:
    """Records scored by the service (one request) with the engine that scored them and their results. When they were
    rows ``offset`` to ``offset + len(records)`` of a group scored by ``Engine.score_columns``, ``conversions`` holds
    the engine's converted columns of that group: the profile reads them instead of converting the records again."""

    engine: Engine
    records: Sequence[Mapping[str, Any]]
    results: Sequence[Mapping[str, Any]]
    conversions: Conversions | None = None
    offset: int = 0


def profile_samples(samples: Sequence[Sample]) -> RunProfile | None:
    """The profile of several samples (a service's group commit): one columnar pass per engine, not per request,
    equal to :func:`profile_records` of all their records (the engine's conversions are read where the samples
    carry them, as :func:`profile_chunk` reads a batch run's)."""
    steps = profile_steps(samples)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            profile: RunProfile | None = done.value
            return profile


def profile_steps(samples: Sequence[Sample]) -> Generator[None, None, RunProfile | None]:
    """:func:`profile_samples` in steps of about a field's work each (a generator that returns the profile), so that
    the service's event loop can profile between requests without holding them up."""
    if not samples or not profiles_enabled():
        return None
    by_engine: dict[int, list[Sample]] = {}
    for sample in samples:
        by_engine.setdefault(id(sample.engine), []).append(sample)
    merged: RunProfile | None = None
    for same_engine in by_engine.values():
        part = yield from _samples_profile(same_engine)
        merged = part if merged is None else merged.merge(part)
    return merged


class _Rows:
    """Consecutive rows of one group (samples that followed each other in it), or consecutive samples without
    conversions (converted together)."""

    __slots__ = ("conversions", "samples", "start", "stop")

    def __init__(self, sample: Sample) -> None:
        self.conversions, self.samples = sample.conversions, [sample]
        self.start, self.stop = sample.offset, sample.offset + len(sample.records)

    def take(self, sample: Sample) -> bool:
        """Add ``sample`` when it continues these rows; False when it does not."""
        if sample.conversions is not self.conversions or (self.conversions is not None and sample.offset != self.stop):
            return False
        self.samples.append(sample)
        self.stop += len(sample.records)
        return True

    def column(self, name: str, check: FieldCheck) -> ColumnResult:
        """The field's converted rows: the engine's, unless it has none or a default hides which were missing; then
        converted again by the profile's ``check`` (as an optional field)."""
        converted = self.conversions.usable(name) if self.conversions is not None else None
        if converted is None:
            values = [record.get(name) for sample in self.samples for record in sample.records]
            return check.convert_column(values, len(values))
        if self.start == 0 and self.stop == len(converted.missing):
            return converted
        start, stop = self.start, self.stop
        problems = {row - start: problem for row, problem in converted.problems.items() if start <= row < stop}
        return ColumnResult(converted.values[start:stop], converted.missing[start:stop], problems)


def _samples_profile(samples: list[Sample]) -> Generator[None, None, RunProfile]:
    """One engine's samples as one profile: each field's rows joined from the samples' groups in order (a step per
    field and per model)."""
    parts: list[_Rows] = []
    for sample in samples:
        if not parts or not parts[-1].take(sample):
            parts.append(_Rows(sample))
    plan = _plan(samples[0].engine)
    fields: dict[str, Profile] = {}
    types: dict[str, str] = {}
    for name, check, kind in plan.fields:
        yield
        fields[name] = _field_profile(_joined([part.column(name, check) for part in parts]), kind, None)
        types[name] = _type_name(check)
    results = [result for sample in samples for result in sample.results]
    models: dict[str, ModelProfile] = {}
    for key, name, version in plan.models:
        yield
        models[key] = _model_profile(results, name, version)
    return RunProfile(len(results), fields, types, models)


def _joined(columns: list[ColumnResult]) -> ColumnResult:
    """Converted columns one after another as one."""
    if len(columns) == 1:
        return columns[0]
    problems: dict[int, str] = {}
    offset = 0
    for column in columns:
        problems.update((row + offset, problem) for row, problem in column.problems.items())
        offset += len(column.missing)
    values = np.concatenate([column.values for column in columns])
    return ColumnResult(values, np.concatenate([column.missing for column in columns]), problems)


def _type_name(check: FieldCheck) -> str:
    """The field's declared type, as profiles name it."""
    return getattr(check.field.type, "__name__", repr(check.field.type))


def _field_profile(converted: ColumnResult, kind: str, column: Any) -> Profile:
    """A field's profile from its converted column (``column``: the raw one, for counting text in Arrow)."""
    valid = ~converted.missing
    missing_count = int(np.count_nonzero(converted.missing))
    invalid = 0
    if converted.problems:
        rows = list(converted.problems)
        valid[rows] = False
        # a required field's missing value is a problem for the engine, and missing for the profile
        required = sum(1 for problem in converted.problems.values() if problem == MISSING_REQUIRED)
        missing_count += required
        invalid = len(rows) - required
    everything = bool(valid.all())
    values = converted.values if everything else converted.values[valid]
    if kind == "number":
        return NumericProfile.of(np.asarray(values, dtype=np.float64), missing=missing_count, invalid=invalid)
    if kind == "text":
        if _is_arrow_text(column):  # the values are the column's strings as they are: counted by Arrow
            import pyarrow as pa

            kept = column if everything else column.filter(pa.array(valid))
            return CategoricalProfile.of(kept, missing=missing_count, invalid=invalid)
        return CategoricalProfile.of(values.tolist(), missing=missing_count, invalid=invalid)
    if kind == "bool":
        words = ["true" if value else "false" for value in values.tolist()]
        return CategoricalProfile.of(words, missing=missing_count, invalid=invalid)
    # values of another class: only counted (all folded into other)
    count = int(values.size)
    return CategoricalProfile(count, missing_count, invalid, {}, count, count > 0)


def _is_arrow_text(column: Any) -> bool:
    kind = getattr(column, "type", None)
    if kind is None or not hasattr(column, "null_count"):
        return False
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _model_profile(results: Sequence[Mapping[str, Any]], name: str, version: str) -> ModelProfile:
    """One model's rows, errors and numeric outputs in a chunk. An output key is profiled when its first value in
    the chunk (among rows without an error) is a number; then None or an absent key is missing, anything but a
    number invalid."""
    slots = list(map(itemgetter(version), map(itemgetter(name), results)))
    ok = [slot for slot in slots if "_error" not in slot]
    outputs: dict[str, NumericProfile] = {}
    if ok:
        for key in sorted(set().union(*ok)):
            if key.startswith("_") or type(_first_value(ok, key)) not in _NUMBERS:
                continue
            try:
                values = list(map(itemgetter(key), ok))
            except KeyError:  # some rows lack the key: missing there
                values = [slot.get(key) for slot in ok]
            kinds = set(map(type, values))
            if kinds <= _NUMBER_TYPES:
                outputs[key] = NumericProfile.of(np.array(values, dtype=np.float64))  # None becomes NaN: missing
            else:  # numbers and other values: the others are invalid
                numbers = [v for v in values if type(v) in _NUMBER_TYPES]
                outputs[key] = NumericProfile.of(
                    np.array(numbers, dtype=np.float64), invalid=len(values) - len(numbers)
                )
    return ModelProfile(len(slots), len(slots) - len(ok), outputs)


def _first_value(slots: list[Mapping[str, Any]], key: str) -> Any:
    """The first value of ``key`` that is not None among ``slots`` (None when there is none)."""
    for slot in slots:
        value = slot.get(key)
        if value is not None:
            return value
    return None
