"""Synthetic report data: three lead-scoring models scored on seeded leads with known outcomes, summarised the way
the statistics module summarises them (deciles, ROC points, calibration bins, histograms, a swap set)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

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
)

MODELS = ("gbm@1.0", "gbm@2.0", "rules@1.0")
START = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)


def _scores(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    converted = rng.random(n) < 0.12
    scores = {}
    for model, separation in zip(MODELS, (1.1, 1.35, 0.6)):
        z = rng.normal(size=n) + separation * converted
        scores[model] = 1 / (1 + np.exp(-(1.2 * z - 2.2)))
    return converted, scores


def _evaluate(model: str, y: np.ndarray, s: np.ndarray) -> ReportModel:
    order = np.argsort(-s, kind="stable")
    ranked = y[order]
    positives, negatives = int(ranked.sum()), int((~ranked).sum())
    tpr = np.concatenate(([0.0], np.cumsum(ranked) / positives))
    fpr = np.concatenate(([0.0], np.cumsum(~ranked) / negatives))
    keep = np.unique(np.linspace(0, len(tpr) - 1, 200).astype(int))
    auc = float(np.trapezoid(tpr, fpr))
    deciles = []
    found = 0
    for d, part in enumerate(np.array_split(ranked, 10), start=1):
        found += int(part.sum())
        rate = float(part.mean())
        deciles.append(ReportDecile(d, len(part), int(part.sum()), rate, rate / y.mean(), found / positives))
    bins = []
    index = np.minimum((s * 10).astype(int), 9)
    for b in range(10):
        inside = index == b
        count = int(inside.sum())
        bins.append(
            ReportCalibrationBin(
                b / 10,
                (b + 1) / 10,
                count,
                float(s[inside].mean()) if count else None,
                float(y[inside].mean()) if count else None,
            )
        )
    ece = sum(b.n * abs((b.mean_score or 0) - (b.rate or 0)) for b in bins) / len(y)
    brier = float(np.mean((s - y) ** 2))
    log_loss = float(-np.mean(y * np.log(s) + (~y) * np.log(1 - s)))
    ks = float(np.max(np.abs(tpr - fpr)))
    return ReportModel(
        model=model,
        n=len(y),
        positives=positives,
        auc=auc,
        auc_ci=(auc - 0.009, auc + 0.009),
        ks=ks,
        brier=brier,
        log_loss=log_loss,
        ece=ece,
        roc_fpr=fpr[keep].tolist(),
        roc_tpr=tpr[keep].tolist(),
        deciles=deciles,
        calibration=bins,
        not_scored=37,
        late=12,
    )


def _swap(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[ReportSwapGroup, ReportSwapGroup, ReportSwapGroup]:
    size = len(y) // 10
    top_a = np.zeros(len(y), bool)
    top_a[np.argsort(-a, kind="stable")[:size]] = True
    top_b = np.zeros(len(y), bool)
    top_b[np.argsort(-b, kind="stable")[:size]] = True

    def group(mask: np.ndarray) -> ReportSwapGroup:
        count = int(mask.sum())
        return ReportSwapGroup(count, int(y[mask].sum()), float(y[mask].mean()) if count else None)

    return group(top_b & ~top_a), group(top_a & ~top_b), group(top_a & top_b)


def synthetic_report_data(n: int = 20_000, runs: int = 14, seed: int = 3) -> ReportData:
    """Everything the report can show, for ``n`` leads scored by three models over ``runs`` runs."""
    rng = np.random.default_rng(seed)
    y, scores = _scores(n, seed)
    run_rows = []
    for i in range(runs):
        records = int(rng.integers(4_000, 30_000))
        kind = "service" if i % 4 == 3 else "batch"
        errors = {m: int(rng.poisson(records * rate)) for m, rate in zip(MODELS, (0.002, 0.004, 0.0))}
        run_rows.append(
            ReportRun(f"run-{i + 1:03d}", START + timedelta(days=3 * i, hours=i % 5), kind, records, errors)
        )
    edges = np.linspace(0, 1, 41)
    histograms = [ReportHistogram(m, edges.tolist(), np.histogram(scores[m], edges)[0].tolist()) for m in MODELS]
    models = [_evaluate(m, y, scores[m]) for m in MODELS]
    a, b = models[0], models[1]
    entering, leaving, staying = _swap(y, scores[a.model], scores[b.model])
    diff = (b.auc or 0) - (a.auc or 0)
    comparison = ReportComparison(
        a=a.model,
        b=b.model,
        n=n,
        verdict=f"{b.model} ranks leads better than {a.model}: AUC {diff:+.3f} (95% CI {diff - 0.006:+.3f} to "
        f"{diff + 0.006:+.3f}), p < 0.001, on {n:,} leads",
        auc_a=a.auc,
        auc_b=b.auc,
        auc_diff=diff,
        auc_diff_ci=(diff - 0.006, diff + 0.006),
        p_value=0.0004,
        entering=entering,
        leaving=leaving,
        staying=staying,
    )
    drift = ReportDrift(
        reference="run-001",
        current=f"run-{runs:03d}",
        rows=[
            ReportDriftRow("time_on_site", 0.31, "act", missing_ref=0.01, missing_cur=0.04),
            ReportDriftRow("lead_source", 0.14, "watch", missing_ref=0.0, missing_cur=0.0),
            ReportDriftRow("country", 0.22, "watch", missing_ref=0.12, missing_cur=0.18),
            ReportDriftRow("total_visits", 0.05, "stable", missing_ref=0.015, missing_cur=0.015),
            ReportDriftRow("occupation", 0.02, "stable", missing_ref=0.29, missing_cur=0.3),
            ReportDriftRow("last_activity", 0.04, "stable", missing_ref=0.01, missing_cur=0.01),
            ReportDriftRow("gbm@2.0", 0.12, "watch", kind="score", missing_ref=0.003, missing_cur=0.004),
            ReportDriftRow("gbm@1.0", 0.06, "stable", kind="score", missing_ref=0.002, missing_cur=0.002),
        ],
    )
    return ReportData(
        source="sqlite:///data/leads.db",
        generated=datetime(2025, 4, 15, 9, 30, tzinfo=UTC),
        as_of="at decision time",
        outcomes=n + 49,
        runs=run_rows,
        histograms=histograms,
        models=models,
        comparisons=[comparison],
        drift=drift,
        notes=["1,204 outcomes decided in the last 30 days were left out as too young to judge."],
    )


def runs_only_report_data() -> ReportData:
    """A store without outcomes or drift: runs and score distributions only."""
    full = synthetic_report_data(n=5_000, runs=3)
    return ReportData(
        source="sqlite:///data/leads.db",
        generated=full.generated,
        runs=full.runs,
        histograms=full.histograms,
    )
