"""From what the store holds to what the report shows: runs, score distributions, the evaluation and drift turned
into :class:`~mlsm.evaluation.report.ReportData`'s summaries (bins, curve points, rows), never per-lead data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mlsm.evaluation._stats import roc_points
from mlsm.evaluation.drift import DriftReport, drift_between_runs
from mlsm.evaluation.evaluate import Evaluation, evaluate_joined
from mlsm.evaluation.join import JoinedModel, JoinedOutcomes, join_outcomes
from mlsm.evaluation.report import (
    ReportCalibrationBin,
    ReportComparison,
    ReportData,
    ReportDecile,
    ReportDrift,
    ReportDriftRow,
    ReportHistogram,
    ReportModel,
    ReportRun,
    ReportSwapGroup,
    render_report,
)
from mlsm.stores import open_store
from mlsm.stores.base import RunRecord, Store, redact_url

__all__ = [
    "build_report",
    "current_scores",
    "histograms_of",
    "report_comparisons",
    "report_drift",
    "report_models",
    "report_page",
    "report_runs",
    "scores_of",
]

HISTOGRAM_BINS = 40


def report_runs(runs: Iterable[RunRecord]) -> list[ReportRun]:
    """Every run, oldest first: when it started, batch or service, records scored and errors per model."""
    shown = []
    for run in sorted(runs, key=lambda r: r.started):
        counts = run.counts or {}
        models = counts.get("models", {})
        shown.append(
            ReportRun(
                run_id=run.id,
                started=datetime.fromtimestamp(run.started, UTC),
                kind=str(run.info.get("kind", "batch")),
                records=int(counts.get("scored", 0)),
                errors={key: int(tally.get("errors", 0)) for key, tally in models.items()},
            )
        )
    return shown


def histograms_of(scores: Iterable[tuple[str, str, np.ndarray]]) -> list[ReportHistogram]:
    """One histogram per (model, key, finite scores), bins over the scores' own range ([0, 1] for probabilities)."""
    shown = []
    for model, key, values in scores:
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        lo, hi = float(values.min()), float(values.max())
        if lo >= 0.0 and hi <= 1.0:
            lo, hi = 0.0, 1.0
        elif lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(lo, hi))
        shown.append(ReportHistogram(model, [float(e) for e in edges], [int(c) for c in counts], key))
    return shown


def report_models(evaluation: Evaluation) -> list[ReportModel]:
    """Each evaluated model with its ROC curve, deciles and calibration bins."""
    shown = []
    for scores, result in evaluation.models:
        curve = roc_points(scores.outcomes, scores.scores)
        calibration = result.calibration
        shown.append(
            ReportModel(
                model=scores.model,
                n=result.n,
                positives=result.positives,
                auc=_finite(result.auc),
                auc_ci=tuple(result.auc_ci) if all(v == v for v in result.auc_ci) else None,  # type: ignore[arg-type]
                ks=_finite(result.ks),
                brier=result.brier,
                log_loss=result.log_loss,
                ece=calibration.ece if calibration else None,
                roc_fpr=[float(v) for v in curve.fpr],
                roc_tpr=[float(v) for v in curve.tpr],
                deciles=[ReportDecile(d.decile, d.n, d.positives, d.rate, d.lift, d.gain) for d in result.deciles],
                calibration=[
                    ReportCalibrationBin(b.lower, b.upper, b.n, b.mean_score, b.rate) for b in calibration.bins
                ]
                if calibration
                else (),
                not_scored=scores.not_scored,
                late=scores.late,
            )
        )
    return shown


def report_comparisons(evaluation: Evaluation) -> list[ReportComparison]:
    """Every compared pair with its verdict and swap set; the first is the report's headline."""
    shown = []
    for pair in evaluation.comparisons:
        data = pair.to_dict()
        swap = pair.result.swap
        lo, hi = pair.result.diff_ci
        shown.append(
            ReportComparison(
                a=pair.a,
                b=pair.b,
                n=pair.result.n,
                verdict=data["verdict"],
                auc_a=data["auc_a"],
                auc_b=data["auc_b"],
                auc_diff=data["auc_diff"],
                auc_diff_ci=(lo, hi) if lo == lo and hi == hi else None,
                p_value=data["p_value"],
                entering=ReportSwapGroup(swap.entering.n, swap.entering.positives, swap.entering.rate),
                leaving=ReportSwapGroup(swap.leaving.n, swap.leaving.positives, swap.leaving.rate),
                staying=ReportSwapGroup(swap.staying.n, swap.staying.positives, swap.staying.rate),
            )
        )
    return shown


def scores_of(models: Sequence[JoinedModel], key: str) -> list[tuple[str, str, np.ndarray]]:
    """The joined scores per model, for histograms when the report has outcomes."""
    return [(m.model, key, m.scores) for m in models]


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def current_scores(store: Store, key: str) -> list[tuple[str, str, np.ndarray]]:
    """Each model@version's numeric ``key`` in every id's current document (the report's distributions when the
    store has no outcomes), read in one pass."""
    found: dict[str, list[float]] = {}
    for document in store.current_documents():
        for name, versions in document["results"].items():
            for version, slot in versions.items():
                value = slot.get(key) if type(slot) is dict and "_error" not in slot else None
                if type(value) is float or type(value) is int:
                    found.setdefault(f"{name}@{version}", []).append(float(value))
    return [(model, key, np.array(values, dtype=np.float64)) for model, values in sorted(found.items())]


def build_report(
    store: Store,
    joined: JoinedOutcomes | None,
    *,
    title: str = "Lead scoring report",
    drift: DriftReport | None = None,
    models: Sequence[str] | None = None,
) -> ReportData:
    """Everything the report shows from ``store``: its runs, score distributions, and with outcomes (``joined``)
    the evaluation, the comparisons and their verdicts; ``drift`` when the caller compared two runs."""
    notes: list[str] = []
    drift_table = None
    if drift is not None:
        drift_table, drift_notes = report_drift(drift)
        notes += drift_notes
    evaluation = None
    as_of = outcomes = None
    if joined is not None and joined.outcomes:
        as_of, outcomes = joined.as_of, joined.outcomes
        evaluation = evaluate_joined(joined, models)
        histograms = histograms_of(scores_of(tuple(joined.models.values()), joined.key))
        if joined.too_young:
            notes.append(f"{joined.too_young:,} outcomes were left out: their decisions are too recent to judge.")
        for model in evaluation.unscored:
            notes.append(f"{model.model} scored none of these outcomes.")
    else:
        histograms = histograms_of(current_scores(store, joined.key if joined else "score"))
        if joined is not None and joined.too_young:  # else the page would say there are no outcomes at all
            notes.append(f"All {joined.too_young:,} outcomes were left out: their decisions are too recent to judge.")
    return ReportData(
        title=title,
        source=redact_url(store.url),
        generated=datetime.now(UTC),
        as_of=as_of,
        outcomes=outcomes,
        runs=report_runs(store.list_runs()),
        histograms=histograms,
        models=report_models(evaluation) if evaluation else (),
        comparisons=report_comparisons(evaluation) if evaluation else (),
        drift=drift_table,
        notes=notes,
    )


def report_drift(drift: DriftReport) -> tuple[ReportDrift, list[str]]:
    """The drift table's rows (fields, then scores) and a note for each row whose PSI could not be computed."""
    rows, notes = [], []
    for f in drift.fields:
        if f.status in ("stable", "watch", "act"):
            rows.append(ReportDriftRow(f.field, _finite(f.psi), f.status, "field", f.missing_ref, f.missing_cur))
        else:
            notes.append(f"Drift of {f.field}: {f.reason or 'no PSI'}.")
    for score in drift.scores:
        name = f"{score.model} {score.key}"
        if score.status in ("stable", "watch", "act"):
            rows.append(ReportDriftRow(name, _finite(score.psi), score.status, "score"))
        else:
            notes.append(f"Drift of {name}: {score.reason or 'no PSI'}.")
    table = ReportDrift(drift.reference, drift.current, rows, drift.thresholds.watch, drift.thresholds.act)
    return table, notes


def report_page(
    store_url: str,
    *,
    as_of: str = "decision",
    key: str = "score",
    models: Sequence[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    mature_days: float | None = None,
    reference: str | None = None,
    current: str | None = None,
    title: str = "Lead scoring report",
) -> str:
    """The report page for the store at ``store_url`` (``mlsm report`` and ``GET /report``), read through a
    read-only connection opened and closed here (never the service writer's); the join's options and the drift
    table's two runs.
    ``StoreError`` when the store cannot be read, ``RunError`` when a drift run is not there."""
    with open_store(store_url, mode="read") as store:
        drift = drift_between_runs(store, reference, current) if reference and current else None
        joined = join_outcomes(
            store, as_of=as_of, key=key, models=models, since=since, until=until, mature_days=mature_days
        )
        data = build_report(store, joined, title=title, drift=drift, models=models)
    return render_report(data)
