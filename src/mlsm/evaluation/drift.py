"""Drift between two runs: per declared input field and per model output, the PSI of the current run's profile on
the reference run's deciles (categories by value), the missing or error rate on each side, and a status.

The profiles are those the runs recorded (:mod:`mlsm.runs._profiles`); a run scored before profiles existed has
none, and comparing it is a setup error (one line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlsm.errors import RunError
from mlsm.evaluation._drift import (
    DEFAULT_THRESHOLDS,
    CategoricalProfile,
    NumericProfile,
    PsiResult,
    PsiThresholds,
    psi_categorical,
    psi_numeric,
)
from mlsm.runs._profiles import RunProfile
from mlsm.stores.base import Store

__all__ = ["DriftReport", "FieldDrift", "ScoreDrift", "compare_profiles", "drift_between_runs", "run_profile"]


@dataclass(frozen=True)
class FieldDrift:
    """One input field: PSI of its valid values (NaN when a side has none, with ``reason``), its missing rate on
    each side, and the status of the PSI."""

    field: str
    psi: float
    missing_ref: float
    missing_cur: float
    status: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "psi": _number(self.psi),
            "missing_ref": _number(self.missing_ref),
            "missing_cur": _number(self.missing_cur),
            "status": self.status,
        }


@dataclass(frozen=True)
class ScoreDrift:
    """One numeric output ``key`` of one model: PSI of its values, the model's error rate on each side, status."""

    model: str
    key: str
    psi: float
    error_rate_ref: float
    error_rate_cur: float
    status: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "key": self.key,
            "psi": _number(self.psi),
            "error_rate_ref": _number(self.error_rate_ref),
            "error_rate_cur": _number(self.error_rate_cur),
            "status": self.status,
        }


@dataclass(frozen=True)
class DriftReport:
    """The drift of run ``current`` from run ``reference``: ``fields`` and ``scores``, under ``thresholds``."""

    reference: str
    current: str
    rows_ref: int
    rows_cur: int
    fields: tuple[FieldDrift, ...]
    scores: tuple[ScoreDrift, ...]
    thresholds: PsiThresholds = DEFAULT_THRESHOLDS

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``mlsm drift --json`` prints (NaN written as null)."""
        return {
            "reference": self.reference,
            "current": self.current,
            "fields": [item.to_dict() for item in self.fields],
            "scores": [item.to_dict() for item in self.scores],
        }

    def table(self) -> str:
        """The report for people: one table of fields, one of model scores, and why a PSI could not be computed."""
        lines = [
            f"drift of run {self.current} ({self.rows_cur:,} rows) from reference run {self.reference} "
            f"({self.rows_ref:,} rows)",
            f"PSI on the reference's deciles (categories by value): stable < {self.thresholds.watch:g} <= watch < "
            f"{self.thresholds.act:g} <= act",
            "",
        ]
        notes: list[str] = []
        width = max([len(item.field) for item in self.fields] + [5])
        lines.append(f"  {'field'.ljust(width)}  {'PSI':>8}  {'missing ref':>11}  {'missing cur':>11}  status")
        for item in self.fields:
            lines.append(
                f"  {item.field.ljust(width)}  {_show(item.psi)}  {_rate(item.missing_ref):>11}  "
                f"{_rate(item.missing_cur):>11}  {item.status}"
            )
            if item.reason:
                notes.append(f"  {item.field}: {item.reason}")
        if not self.fields:
            lines.append("  (no declared input fields)")
        lines.append("")
        width = max([len(f"{score.model} {score.key}") for score in self.scores] + [5])
        lines.append(f"  {'model score'.ljust(width)}  {'PSI':>8}  {'errors ref':>11}  {'errors cur':>11}  status")
        for score in self.scores:
            label = f"{score.model} {score.key}"
            lines.append(
                f"  {label.ljust(width)}  {_show(score.psi)}  {_rate(score.error_rate_ref):>11}  "
                f"{_rate(score.error_rate_cur):>11}  {score.status}"
            )
            if score.reason:
                notes.append(f"  {label}: {score.reason}")
        if not self.scores:
            lines.append("  (no numeric model outputs)")
        if notes:
            lines += ["", "PSI not computed:", *notes]
        return "\n".join(lines)


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _show(value: float) -> str:
    return f"{value:8.4f}" if math.isfinite(value) else f"{'-':>8}"


def _rate(value: float) -> str:
    return f"{value:.2%}" if math.isfinite(value) else "-"


def _psi(ref: Any, cur: Any) -> PsiResult:
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        return psi_numeric(ref, cur)
    if isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        return psi_categorical(ref, cur)
    return PsiResult(float("nan"), (), (), reason="profiled as numbers in one run and as text in the other")


def compare_profiles(
    ref: RunProfile,
    cur: RunProfile,
    *,
    reference: str,
    current: str,
    thresholds: PsiThresholds = DEFAULT_THRESHOLDS,
) -> DriftReport:
    """The drift of profile ``cur`` from ``ref``: every field and every model output of either, reference's first."""
    nan = float("nan")
    fields = []
    for name in dict.fromkeys([*ref.fields, *cur.fields]):
        a, b = ref.fields.get(name), cur.fields.get(name)
        if a is None or b is None:
            side = "reference" if a is None else "current"
            result = PsiResult(nan, (), (), reason=f"the {side} run does not declare this field")
        else:
            result = _psi(a, b)
        fields.append(
            FieldDrift(
                name,
                result.value,
                a.missing_rate if a is not None else nan,
                b.missing_rate if b is not None else nan,
                result.status(thresholds),
                result.reason,
            )
        )
    scores = []
    for key in dict.fromkeys([*ref.models, *cur.models]):
        m, n = ref.models.get(key), cur.models.get(key)
        outputs = dict.fromkeys([*(m.outputs if m else {}), *(n.outputs if n else {})])
        for output in outputs:
            a_out = m.outputs.get(output) if m else None
            b_out = n.outputs.get(output) if n else None
            if a_out is None or b_out is None:
                side = "reference" if a_out is None else "current"
                result = PsiResult(nan, (), (), reason=f"the {side} run has no numeric {output!r} from this model")
            else:
                result = psi_numeric(a_out, b_out)
            scores.append(
                ScoreDrift(
                    key,
                    output,
                    result.value,
                    m.error_rate if m else nan,
                    n.error_rate if n else nan,
                    result.status(thresholds),
                    result.reason,
                )
            )
    return DriftReport(reference, current, ref.rows, cur.rows, tuple(fields), tuple(scores), thresholds)


def run_profile(store: Store, run_id: str) -> RunProfile:
    """The profile run ``run_id`` recorded; ``RunError`` (one line) when there is no such run or it has none."""
    run = store.get_run(run_id)
    if run is None:
        raise RunError(f"no run {run_id!r} in the store (mlsm runs lists them)")
    data = (run.counts or {}).get("profile")
    if data is None:
        raise RunError(
            f"run {run_id!r} has no profile: it was scored by an mlsm that did not record profiles; score its input "
            "again to compare it"
        )
    try:
        return RunProfile.from_json(data)
    except ValueError as exc:
        raise RunError(f"run {run_id!r}: its profile cannot be read: {exc}") from exc


def drift_between_runs(
    store: Store, reference: str, current: str, thresholds: PsiThresholds = DEFAULT_THRESHOLDS
) -> DriftReport:
    """The drift of run ``current`` from run ``reference``, both from ``store``."""
    ref, cur = run_profile(store, reference), run_profile(store, current)
    return compare_profiles(ref, cur, reference=reference, current=current, thresholds=thresholds)
