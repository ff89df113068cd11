"""The evaluation report: one self-contained HTML page (charts, styles and the charting library inline).

``render_report(ReportData(...))`` returns the page as a string. ``ReportData`` holds summaries only (histogram
bins, curve points, decile rows), so the page's size does not depend on how many leads were scored; every part is
optional and the page says what is missing and how to get it. Charts are drawn by Apache ECharts (vendored in
``_vendor/``, see its README) into SVG; the page uses system fonts and asks the network for nothing.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "FONT",
    "KIND_COLORS",
    "MAX_BINS",
    "NAV",
    "NEUTRAL",
    "PALETTE",
    "ROC_GRID",
    "STATUS_STYLE",
    "ReportCalibrationBin",
    "ReportComparison",
    "ReportData",
    "ReportDecile",
    "ReportDrift",
    "ReportDriftRow",
    "ReportHistogram",
    "ReportModel",
    "ReportRun",
    "ReportSwapGroup",
    "render_report",
]

# The page draws summaries at a fixed resolution, so that its size does not depend on what the caller hands over:
# histograms with more bins are merged down to MAX_BINS, and ROC curves are drawn at ROC_GRID common false-alarm
# rates (which also lets one tooltip show every model at the same rate). The statistics behind them are the caller's.
MAX_BINS = 200
ROC_GRID = 101

PALETTE = ("#2563eb", "#ea580c", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#475569")
NEUTRAL = "#94a3b8"
STATUS_STYLE = {  # text colour, background, bar colour, label: the status is always written out, never colour alone
    "stable": ("#166534", "#dcfce7", "#16a34a", "Stable"),
    "watch": ("#92400e", "#fef3c7", "#d97706", "Watch"),
    "act": ("#991b1b", "#fee2e2", "#dc2626", "Act"),
}
KIND_COLORS = {"batch": "#334155", "service": "#94a3b8"}  # runs are not models: greys, so no model colour is reused
FONT = (
    '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", '
    '"Liberation Sans", "DejaVu Sans", sans-serif'
)


# --- the data ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRun:
    """One run: its id, when it started (a datetime, or ISO 8601 text), its kind ("batch" or "service"), how many
    records it scored, and per model ("name@version") how many of those records got an error."""

    run_id: str
    started: datetime | str
    kind: str
    records: int
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportHistogram:
    """One model's score distribution: ``len(counts)`` bins between consecutive ``edges``."""

    model: str
    edges: Sequence[float]
    counts: Sequence[int]
    key: str = "score"


@dataclass(frozen=True)
class ReportDecile:
    """Decile ``decile`` (1 = the top 10% by score): its leads, conversions, conversion rate, lift (rate over the
    average rate) and cumulative gain (share of all conversions in deciles 1..decile); None where undefined."""

    decile: int
    n: int
    positives: int
    rate: float | None
    lift: float | None
    gain: float | None


@dataclass(frozen=True)
class ReportCalibrationBin:
    """Scores in [lower, upper): how many leads, their mean score, and the share that converted (None if empty)."""

    lower: float
    upper: float
    n: int
    mean_score: float | None
    rate: float | None


@dataclass(frozen=True)
class ReportModel:
    """One model's evaluation against outcomes: counts, AUC with its 95% CI, KS, Brier, log loss, calibration error
    (the last three None when scores are not probabilities), ROC points, deciles and calibration bins."""

    model: str
    n: int
    positives: int
    auc: float | None = None
    auc_ci: tuple[float, float] | None = None
    ks: float | None = None
    brier: float | None = None
    log_loss: float | None = None
    ece: float | None = None
    roc_fpr: Sequence[float] = ()
    roc_tpr: Sequence[float] = ()
    deciles: Sequence[ReportDecile] = ()
    calibration: Sequence[ReportCalibrationBin] = ()
    not_scored: int = 0
    late: int = 0


@dataclass(frozen=True)
class ReportSwapGroup:
    """Leads in one part of a swap set: how many, how many converted, and their conversion rate."""

    n: int
    positives: int
    rate: float | None


@dataclass(frozen=True)
class ReportComparison:
    """Switching from model ``a`` (the champion) to ``b`` (the challenger) over the ``n`` leads both scored: the AUC
    difference b - a with its CI, the paired p-value, the verdict sentence, and the top-decile swap set."""

    a: str
    b: str
    n: int
    verdict: str
    auc_a: float | None = None
    auc_b: float | None = None
    auc_diff: float | None = None
    auc_diff_ci: tuple[float, float] | None = None
    p_value: float | None = None
    entering: ReportSwapGroup | None = None
    leaving: ReportSwapGroup | None = None
    staying: ReportSwapGroup | None = None


@dataclass(frozen=True)
class ReportDriftRow:
    """One drift line: an input field (kind "field"; missing rates before and now) or a model's score (kind
    "score"; error rates before and now), its PSI and its status ("stable", "watch" or "act")."""

    name: str
    psi: float | None
    status: str
    kind: str = "field"
    missing_ref: float | None = None
    missing_cur: float | None = None


@dataclass(frozen=True)
class ReportDrift:
    """Drift of run ``current`` against run ``reference``, with the PSI thresholds that set the statuses."""

    reference: str
    current: str
    rows: Sequence[ReportDriftRow]
    watch: float = 0.1
    act: float = 0.25


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, all optional: runs and score distributions come from any store; models,
    comparisons (the first one is the headline) and drift need outcomes or profiles. ``source`` names the store
    as it should be shown (no password); ``notes`` are extra lines for the reader (e.g. outcomes left out)."""

    title: str = "Lead scoring report"
    source: str | None = None
    generated: datetime | None = None
    as_of: str | None = None
    outcomes: int | None = None
    runs: Sequence[ReportRun] = ()
    histograms: Sequence[ReportHistogram] = ()
    models: Sequence[ReportModel] = ()
    comparisons: Sequence[ReportComparison] = ()
    drift: ReportDrift | None = None
    notes: Sequence[str] = ()


# --- numbers in words ------------------------------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int(value: int | None) -> str:
    return "–" if value is None else f"{int(value):,}"


def _pct(value: float | None) -> str:
    value = _finite(value)
    if value is None:
        return "–"
    shown = value * 100
    return f"{shown:.1f}%" if 0 < abs(shown) < 10 else f"{shown:.0f}%"


def _pct_points(value: float | None) -> str:
    value = _finite(value)
    return "–" if value is None else f"{value * 100:.1f} points"


def _num(value: float | None, digits: int = 3) -> str:
    value = _finite(value)
    return "–" if value is None else f"{value:.{digits}f}"


def _times(value: float | None) -> str:
    value = _finite(value)
    return "–" if value is None else f"{value:.1f}×"


def _signed(value: float | None, digits: int = 3) -> str:
    value = _finite(value)
    return "–" if value is None else f"{value:+.{digits}f}"


def _p_value(value: float | None) -> str:
    value = _finite(value)
    if value is None:
        return "–"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _when(value: datetime | str) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day(moment: datetime | None) -> str:
    return "?" if moment is None else f"{moment.day} {moment:%b %Y}"


def _stamp(moment: datetime | None) -> str:
    return "?" if moment is None else f"{moment.day} {moment:%b %Y %H:%M} UTC"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


# --- checking and thinning the input ------------------------------------------------------------------------------


def _check(data: ReportData) -> None:
    """Raise ValueError naming the first inconsistent part of ``data`` and what it should look like."""
    for hist in data.histograms:
        if len(hist.edges) != len(hist.counts) + 1:
            raise ValueError(
                f"histogram of {hist.model!r}: {len(hist.edges)} edges for {len(hist.counts)} counts; "
                "give one edge more than counts (each bin lies between two consecutive edges)"
            )
    for model in data.models:
        if len(model.roc_fpr) != len(model.roc_tpr):
            raise ValueError(
                f"ROC of {model.model!r}: {len(model.roc_fpr)} false-positive rates for {len(model.roc_tpr)} "
                "true-positive rates; give both lists the same length"
            )
    if data.drift is not None:
        for row in data.drift.rows:
            if row.status not in STATUS_STYLE:
                raise ValueError(
                    f"drift row {row.name!r}: status {row.status!r} is not one of {', '.join(STATUS_STYLE)}"
                )


def _thin_bins(edges: Sequence[float], counts: Sequence[int]) -> tuple[list[float], list[int]]:
    """Merge neighbouring bins until at most MAX_BINS remain (sums of counts, outer edges kept)."""
    edges_out, counts_out = [float(e) for e in edges], [int(c) for c in counts]
    while len(counts_out) > MAX_BINS:
        step = math.ceil(len(counts_out) / MAX_BINS)
        counts_out = [sum(counts_out[i : i + step]) for i in range(0, len(counts_out), step)]
        edges_out = [*edges_out[:-1:step], edges_out[-1]]
    return edges_out, counts_out


def _roc_on_grid(fpr: Sequence[float], tpr: Sequence[float]) -> list[float]:
    """The ROC curve's true-positive rate at ROC_GRID evenly spaced false-positive rates (the highest tpr reached
    at or before each rate, so a vertical step is drawn at its top)."""
    points = sorted(zip((float(x) for x in fpr), (float(y) for y in tpr)))
    grid = [i / (ROC_GRID - 1) for i in range(ROC_GRID)]
    values: list[float] = []
    j, best = 0, 0.0
    for x in grid:
        while j < len(points) and points[j][0] <= x + 1e-12:
            best = max(best, points[j][1])
            j += 1
        values.append(best)
    return values


def _quantile(edges: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The score below which a share ``q`` of the histogram's leads lie (linear within a bin)."""
    total = sum(counts)
    if total <= 0:
        return None
    target, seen = q * total, 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= target:
            inside = (target - seen) / count
            return float(edges[i]) + inside * (float(edges[i + 1]) - float(edges[i]))
        seen += count
    return float(edges[-1])


# --- charts ----------------------------------------------------------------------------------------------------------


@dataclass
class _Chart:
    """One chart: its container id, the ECharts option, and how its tooltip reads the data items."""

    id: str
    option: dict[str, Any]
    tooltip: str = "item"  # "item": the hovered item's tip; "axis": a heading and every series' tip

    def legend(self) -> list[tuple[str, str, bool]]:
        """The legend, drawn in HTML above the chart (it wraps on narrow screens and prints whole, which ECharts'
        own legend does not): each series' name, colour and whether its line is dashed."""
        if "legend" not in self.option:
            return []
        return [
            (
                str(series["name"]),
                series.get("itemStyle", {}).get("color", NEUTRAL),
                series.get("lineStyle", {}).get("type") == "dashed",
            )
            for series in self.option["series"]
            if series.get("name")
        ]


def _colors(data: ReportData) -> dict[str, str]:
    """One colour per model, the same on every chart: the headline pair first, then in order of appearance."""
    names: list[str] = []
    for comparison in data.comparisons[:1]:
        names += [comparison.a, comparison.b]
    names += [m.model for m in data.models] + [h.model for h in data.histograms]
    for run in data.runs:
        names += list(run.errors)
    ordered = list(dict.fromkeys(names))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(ordered)}


def _base(*, legend: bool = True) -> dict[str, Any]:
    option: dict[str, Any] = {
        "animation": False,
        "aria": {"enabled": True},
        "textStyle": {"fontFamily": FONT, "color": "#334155"},
        "grid": {"left": 56, "right": 20, "top": 16, "bottom": 52},
        "tooltip": {"confine": True, "backgroundColor": "rgba(255,255,255,0.97)", "borderColor": "#cbd5e1"},
    }
    if legend:
        option["legend"] = {"show": False}  # kept for hiding and showing series; drawn by _figure in HTML
    return option


def _axis(kind: str, name: str = "", **extra: Any) -> dict[str, Any]:
    axis: dict[str, Any] = {
        "type": kind,
        "name": name,
        "nameLocation": "middle",
        "nameGap": 30,
        "nameTextStyle": {"color": "#64748b", "fontSize": 12},
        "axisLine": {"lineStyle": {"color": "#cbd5e1"}},
        "axisLabel": {"color": "#475569"},
        "splitLine": {"lineStyle": {"color": "#eef2f7"}},
    }
    axis.update(extra)
    return axis


def _percent_axis(name: str, top: float | None = 100) -> dict[str, Any]:
    extra: dict[str, Any] = {"min": 0, "axisLabel": {"color": "#475569", "formatter": "{value}%", "hideOverlap": True}}
    if top is not None:
        extra["max"] = top
    return _axis("value", name, **extra)


def _tip(*parts: str) -> str:
    return "<br>".join(parts)


def _diagonal(name: str, points: list[list[float]], label: str) -> dict[str, Any]:
    return {
        "type": "line",
        "name": name,
        "data": [{"value": p, "tip": f"{_esc(name)}: {label}"} for p in points],
        "symbol": "none",
        "lineStyle": {"type": "dashed", "color": NEUTRAL, "width": 1.5},
        "itemStyle": {"color": NEUTRAL},
        "z": 1,
    }


def _run_charts(runs: Sequence[ReportRun], colors: dict[str, str]) -> tuple[_Chart, _Chart]:
    ordered = sorted(runs, key=lambda r: (_when(r.started) or datetime.min.replace(tzinfo=UTC), r.run_id))
    labels = [f"{_day(_when(r.started))}" for r in ordered]
    kinds = list(dict.fromkeys(r.kind for r in ordered))
    records = _base(legend=len(kinds) > 1)
    records["xAxis"] = _axis("category", "run start", data=labels, axisTick={"alignWithLabel": True})
    records["yAxis"] = _axis("value", "records scored")
    records["series"] = [
        {
            "type": "bar",
            "name": kind,
            "stack": "records",
            "barMaxWidth": 36,
            "itemStyle": {"color": KIND_COLORS.get(kind, NEUTRAL), "borderRadius": [3, 3, 0, 0]},
            "data": [
                {
                    "value": r.records if r.kind == kind else None,
                    "tip": _tip(
                        f"<b>{_esc(r.run_id)}</b> ({_esc(r.kind)})",
                        _esc(_stamp(_when(r.started))),
                        f"{_int(r.records)} records",
                    ),
                }
                for r in ordered
            ],
        }
        for kind in kinds
    ]
    models = list(dict.fromkeys(m for r in ordered for m in r.errors))
    errors = _base()
    errors["xAxis"] = _axis("category", "run start", data=labels, boundaryGap=False)
    errors["yAxis"] = _percent_axis("records with an error", top=None)
    errors["series"] = [
        {
            "type": "line",
            "name": model,
            "symbolSize": 6,
            "itemStyle": {"color": colors.get(model, NEUTRAL)},
            "lineStyle": {"width": 2},
            "data": [
                {
                    "value": round(100 * r.errors[model] / r.records, 4) if model in r.errors and r.records else None,
                    "tip": f"{_esc(model)}: {_pct(r.errors[model] / r.records) if r.records else '–'} "
                    f"({_int(r.errors[model])} of {_int(r.records)})"
                    if model in r.errors
                    else f"{_esc(model)}: not in this run",
                }
                for r in ordered
            ],
        }
        for model in models
    ]
    if len(ordered) > 40:
        zoom = [{"type": "inside"}, {"type": "slider", "height": 16, "bottom": 4}]
        for option in (records, errors):
            option["dataZoom"] = zoom
            option["grid"]["bottom"] = 70
    return _Chart("chart-runs", records, "axis"), _Chart("chart-errors", errors, "axis")


def _histogram_chart(index: int, hist: ReportHistogram, color: str) -> _Chart:
    edges, counts = _thin_bins(hist.edges, hist.counts)
    total = sum(counts) or 1
    digits = 2 if edges[-1] - edges[0] >= 1 or len(counts) <= 20 else 3
    option = _base(legend=False)
    option["xAxis"] = _axis(
        "category",
        hist.key,
        data=[f"{e:.{digits}f}" for e in edges[:-1]],
        axisTick={"show": False},
        axisLabel={"color": "#475569", "hideOverlap": True},
    )
    option["yAxis"] = _axis("value", "leads")
    option["series"] = [
        {
            "type": "bar",
            "name": hist.model,
            "barCategoryGap": "8%",
            "itemStyle": {"color": color, "borderRadius": [2, 2, 0, 0]},
            "data": [
                {
                    "value": count,
                    "tip": f"{_esc(hist.key)} {lo:.{digits}f}–{hi:.{digits}f}: "
                    f"{_int(count)} leads ({_pct(count / total)})",
                }
                for lo, hi, count in zip(edges[:-1], edges[1:], counts)
            ],
        }
    ]
    return _Chart(f"chart-hist-{index}", option)


def _roc_chart(models: Sequence[ReportModel], colors: dict[str, str]) -> _Chart:
    grid = [i / (ROC_GRID - 1) for i in range(ROC_GRID)]
    option = _base()
    option["xAxis"] = _axis(
        "category",
        "non-converters flagged (false alarms)",
        data=[f"{round(x * 100)}%" for x in grid],
        boundaryGap=False,
        axisLabel={"color": "#475569", "interval": 19},
        axisTick={"interval": 19},
    )
    option["yAxis"] = _percent_axis("converters found")
    series: list[dict[str, Any]] = []
    for model in models:
        if not model.roc_fpr:
            continue
        tpr = _roc_on_grid(model.roc_fpr, model.roc_tpr)
        series.append(
            {
                "type": "line",
                "name": model.model,
                "showSymbol": False,
                "smooth": False,
                "lineStyle": {"width": 2.5},
                "itemStyle": {"color": colors.get(model.model, NEUTRAL)},
                "data": [
                    {"value": round(100 * y, 3), "tip": f"{_esc(model.model)} finds {_pct(y)} of converters"}
                    for y in tpr
                ],
            }
        )
    series.append(
        {
            **_diagonal("coin flip", [], ""),
            "data": [
                {
                    "value": round(100 * x, 3),
                    "tip": f"coin flip finds {_pct(x)}",
                    "head": f"flagging {_pct(x)} of non-converters",
                }
                for x in grid
            ],
        }
    )
    option["series"] = series
    option["tooltip"]["axisPointer"] = {"type": "line", "lineStyle": {"color": "#94a3b8"}}
    return _Chart("chart-roc", option, "axis")


def _decile_labels() -> list[str]:
    return ["top 10%", *[f"{10 * d}–{10 * d + 10}%" for d in range(1, 10)]]


def _gain_chart(models: Sequence[ReportModel], colors: dict[str, str]) -> _Chart:
    option = _base()
    shares = ["0%", *[f"{10 * d}%" for d in range(1, 11)]]
    option["xAxis"] = _axis("category", "leads contacted, best scores first", data=shares, boundaryGap=False)
    option["yAxis"] = _percent_axis("conversions reached")
    series: list[dict[str, Any]] = []
    for model in models:
        gains: list[float | None] = [0.0, *(_finite(d.gain) for d in sorted(model.deciles, key=lambda d: d.decile))]
        if len(gains) < 2:
            continue
        series.append(
            {
                "type": "line",
                "name": model.model,
                "symbolSize": 6,
                "lineStyle": {"width": 2.5},
                "itemStyle": {"color": colors.get(model.model, NEUTRAL)},
                "data": [
                    {
                        "value": None if g is None else round(100 * g, 3),
                        "tip": f"{_esc(model.model)} reaches {_pct(g)} of conversions",
                    }
                    for g in gains
                ],
            }
        )
    series.append(
        {
            **_diagonal("random order", [], ""),
            "data": [
                {
                    "value": 10 * d,
                    "tip": f"random order reaches {10 * d}%",
                    "head": f"calling the top {10 * d}% of leads",
                }
                for d in range(11)
            ],
        }
    )
    option["series"] = series
    return _Chart("chart-gain", option, "axis")


def _lift_chart(models: Sequence[ReportModel], colors: dict[str, str]) -> _Chart:
    option = _base()
    option["xAxis"] = _axis("category", "score band (1 = the top 10%)", data=list(range(1, 11)))
    option["yAxis"] = _axis("value", "lift (× average rate)", axisLabel={"color": "#475569", "formatter": "{value}×"})
    series: list[dict[str, Any]] = []
    for model in models:
        by_decile = {d.decile: d for d in model.deciles}
        if not by_decile:
            continue
        series.append(
            {
                "type": "bar",
                "name": model.model,
                "barMaxWidth": 22,
                "itemStyle": {"color": colors.get(model.model, NEUTRAL), "borderRadius": [2, 2, 0, 0]},
                "data": [
                    {
                        "head": f"band {d}: {_decile_labels()[d - 1]} of scores",
                        "value": _finite(by_decile[d].lift) if d in by_decile else None,
                        "tip": f"{_esc(model.model)}: {_times(by_decile[d].lift)}, {_pct(by_decile[d].rate)} converted "
                        f"({_int(by_decile[d].positives)} of {_int(by_decile[d].n)})"
                        if d in by_decile
                        else f"{_esc(model.model)}: –",
                    }
                    for d in range(1, 11)
                ],
            }
        )
    if series:
        series[0]["markLine"] = {
            "silent": True,
            "symbol": "none",
            "lineStyle": {"color": "#64748b", "type": "dashed"},
            "label": {"formatter": "average", "color": "#64748b", "position": "insideEndTop"},
            "data": [{"yAxis": 1}],
        }
    option["series"] = series
    return _Chart("chart-lift", option, "axis")


def _calibration_chart(models: Sequence[ReportModel], colors: dict[str, str]) -> _Chart:
    option = _base()
    option["xAxis"] = _percent_axis("what the score said (mean score in the band)")
    option["xAxis"]["nameGap"] = 30
    option["yAxis"] = _percent_axis("what happened (share converted)")
    series: list[dict[str, Any]] = []
    for model in models:
        bins = [
            b for b in model.calibration if b.n and _finite(b.mean_score) is not None and _finite(b.rate) is not None
        ]
        if not bins:
            continue
        series.append(
            {
                "type": "line",
                "name": model.model,
                "symbolSize": 8,
                "lineStyle": {"width": 2},
                "itemStyle": {"color": colors.get(model.model, NEUTRAL)},
                "data": [
                    {
                        "value": [round(100 * float(b.mean_score or 0), 3), round(100 * float(b.rate or 0), 3)],
                        "tip": _tip(
                            f"<b>{_esc(model.model)}</b>, scores {_num(b.lower, 1)}–{_num(b.upper, 1)}",
                            f"said {_pct(b.mean_score)} on average, {_pct(b.rate)} converted",
                            f"{_int(b.n)} leads",
                        ),
                    }
                    for b in bins
                ],
            }
        )
    series.append(_diagonal("perfect calibration", [[0, 0], [100, 100]], "score = share converted"))
    option["series"] = series
    return _Chart("chart-calibration", option)


def _swap_chart(comparison: ReportComparison, colors: dict[str, str]) -> _Chart:
    """Conversion rates of the leads that enter, leave and stay in the top decile when switching from a to b."""
    rows = [
        ("stay", comparison.staying, NEUTRAL, f"in the top 10% of both {comparison.a} and {comparison.b}"),
        ("leave", comparison.leaving, colors.get(comparison.a, NEUTRAL), f"in {comparison.a}'s top 10% only"),
        ("enter", comparison.entering, colors.get(comparison.b, NEUTRAL), f"in {comparison.b}'s top 10% only"),
    ]
    present = [(label, group, color, where) for label, group, color, where in rows if group is not None]
    option = _base(legend=False)
    option["grid"].update({"left": 16, "right": 96, "top": 8, "bottom": 40, "containLabel": True})
    option["yAxis"] = _axis("category", "", data=[r[0] for r in present], axisTick={"show": False})
    option["xAxis"] = _percent_axis("share converted", top=None)
    option["series"] = [
        {
            "type": "bar",
            "name": "conversion rate",
            "barMaxWidth": 34,
            "label": {"show": True, "position": "right", "color": "#334155"},
            "data": [
                {
                    "value": None if _finite(group.rate) is None else round(100 * float(group.rate or 0), 2),
                    "itemStyle": {"color": color, "borderRadius": [0, 3, 3, 0]},
                    "label": {"formatter": f"{_pct(group.rate)} of {_int(group.n)}"},
                    "tip": _tip(
                        f"<b>{label}</b>: {_plural(group.n, 'lead')} {_esc(where)}",
                        f"{_int(group.positives)} converted ({_pct(group.rate)})",
                    ),
                }
                for label, group, color, where in present
            ],
        }
    ]
    return _Chart("chart-swap", option)


def _drift_chart(drift: ReportDrift) -> _Chart:
    rows = sorted(drift.rows, key=lambda r: _finite(r.psi) or 0.0)
    option = _base(legend=False)
    option["grid"].update({"left": 16, "right": 40, "top": 24, "bottom": 44, "containLabel": True})
    option["yAxis"] = _axis(
        "category", "", data=[_drift_label(r) for r in rows], axisTick={"show": False}, axisLabel={"color": "#334155"}
    )
    top = max([drift.act * 1.2, *[(_finite(r.psi) or 0) * 1.05 for r in rows]])
    option["xAxis"] = _axis("value", "change (PSI)", min=0, max=math.ceil(top * 20) / 20)
    option["series"] = [
        {
            "type": "bar",
            "name": "PSI",
            "barMaxWidth": 18,
            "data": [
                {
                    "value": _finite(r.psi),
                    "itemStyle": {"color": STATUS_STYLE[r.status][2], "borderRadius": [0, 3, 3, 0]},
                    "tip": f"{_esc(_drift_label(r))}: PSI {_num(r.psi)}, {STATUS_STYLE[r.status][3].lower()}",
                }
                for r in rows
            ],
            "markLine": {
                "silent": True,
                "symbol": "none",
                "lineStyle": {"type": "dashed"},
                "data": [
                    {
                        "xAxis": drift.watch,
                        "lineStyle": {"color": STATUS_STYLE["watch"][0]},
                        "label": {"formatter": "watch", "color": STATUS_STYLE["watch"][0]},
                    },
                    {
                        "xAxis": drift.act,
                        "lineStyle": {"color": STATUS_STYLE["act"][0]},
                        "label": {"formatter": "act", "color": STATUS_STYLE["act"][0]},
                    },
                ],
            },
        }
    ]
    return _Chart("chart-drift", option)


def _drift_label(row: ReportDriftRow) -> str:
    return f"score of {row.name}" if row.kind == "score" else row.name


# --- captions ----------------------------------------------------------------------------------------------------


def _best(models: Sequence[ReportModel]) -> ReportModel | None:
    rated = [m for m in models if _finite(m.auc) is not None]
    if rated:
        return max(rated, key=lambda m: float(m.auc or 0))
    return models[0] if models else None


def _average_rate(model: ReportModel) -> float | None:
    return model.positives / model.n if model.n else None


def _top_decile(model: ReportModel) -> ReportDecile | None:
    return next((d for d in model.deciles if d.decile == 1), None)


def _runs_caption(runs: Sequence[ReportRun]) -> str:
    ordered = sorted(runs, key=lambda r: _when(r.started) or datetime.min.replace(tzinfo=UTC))
    total = sum(r.records for r in ordered)
    first, last = _when(ordered[0].started), _when(ordered[-1].started)
    span = f"on {_day(first)}" if len(ordered) == 1 else f"from {_day(first)} to {_day(last)}"
    return (
        f"{_plural(len(ordered), 'run')} {span} scored {_plural(total, 'record')}; the latest, "
        f"{ordered[-1].run_id}, scored {_int(ordered[-1].records)}."
    )


def _errors_caption(runs: Sequence[ReportRun]) -> str:
    ordered = sorted(runs, key=lambda r: _when(r.started) or datetime.min.replace(tzinfo=UTC))
    if not any(any(r.errors.values()) for r in ordered):
        return "No model failed on any record in these runs."
    latest = ordered[-1]
    failing = {m: n for m, n in latest.errors.items() if n}
    if failing and latest.records:
        model, count = max(failing.items(), key=lambda kv: kv[1])
        others = len(failing) - 1
        tail = f"; {_plural(others, 'other model')} also failed on some" if others else ", the only model that failed"
        return (
            f"In the latest run {model} failed on {_pct(count / latest.records)} of the records "
            f"({_int(count)} of {_int(latest.records)}){tail}. Hover a point for the counts."
        )
    return "No model failed in the latest run; earlier runs had failures (hover a point for the counts)."


def _histogram_caption(hist: ReportHistogram) -> str:
    total = sum(hist.counts)
    if not total:
        return f"No {hist.key} values to show for {hist.model}."
    median, top = _quantile(hist.edges, hist.counts, 0.5), _quantile(hist.edges, hist.counts, 0.9)
    return (
        f"Half of the {_plural(total, 'lead')} scored below {_num(median, 2)}; the top 10% scored above {_num(top, 2)}."
    )


def _roc_caption(models: Sequence[ReportModel]) -> str:
    best = _best(models)
    if best is None or _finite(best.auc) is None:
        return "The higher the curve, the better a model tells converters from the rest."
    ci = f" (95% CI {_num(best.auc_ci[0])}–{_num(best.auc_ci[1])})" if best.auc_ci else ""
    lead = f"{best.model} is highest" if len(models) > 1 else f"{best.model} scores"
    return (
        f"The higher the curve, the better a model tells converters from the rest. {lead}: "
        f"AUC {_num(best.auc)}{ci}, where 0.5 is a coin flip and 1.0 is perfect."
    )


def _gain_caption(models: Sequence[ReportModel]) -> str:
    best = _best(models)
    second = next((d for d in best.deciles if d.decile == 2), None) if best else None
    if best is None or second is None or _finite(second.gain) is None:
        return "How many of the conversions you reach by contacting the best-scored leads first."
    return (
        f"Calling the top 20% of leads ranked by {best.model} reaches {_pct(second.gain)} of everyone who "
        "converted; calling 20% at random would reach 20%."
    )


def _lift_caption(models: Sequence[ReportModel]) -> str:
    best = _best(models)
    top = _top_decile(best) if best else None
    if best is None or top is None or _finite(top.rate) is None:
        return "How much more often each score band converts than the average lead."
    return (
        f"Of the leads {best.model} puts in its top 10%, {_pct(top.rate)} converted — {_times(top.lift)} "
        f"the average of {_pct(_average_rate(best))}."
    )


def _calibration_caption(models: Sequence[ReportModel]) -> str:
    rated = [m for m in models if _finite(m.ece) is not None]
    gaps = ", ".join(f"{m.model} {_pct_points(m.ece)}" for m in rated)
    return (
        "On the dashed line a score of 30% means 30 of 100 such leads convert, so scores can be read as chances. "
        f"Average gap between score and reality: {gaps}."
    )


def _swap_caption(comparison: ReportComparison) -> str:
    enter, leave = comparison.entering, comparison.leaving
    if enter is None or leave is None:
        return ""
    return (
        f"Switching from {comparison.a} to {comparison.b} puts {_plural(enter.n, 'different lead')} in the top 10%: "
        f"{_pct(enter.rate)} of them converted, against {_pct(leave.rate)} of the {_int(leave.n)} they replace."
    )


def _drift_caption(drift: ReportDrift) -> str:
    by_status = {s: [r for r in drift.rows if r.status == s] for s in STATUS_STYLE}
    act = sorted(by_status["act"], key=lambda r: -(_finite(r.psi) or 0))
    parts = []
    if act:
        named = ", ".join(f"{_drift_label(r)} (PSI {_num(r.psi, 2)})" for r in act[:3])
        parts.append(f"{_plural(len(act), 'input')} changed enough to act on: {named}")
    if by_status["watch"]:
        parts.append(f"{_int(len(by_status['watch']))} to watch")
    parts.append(f"{_int(len(by_status['stable']))} stable")
    return (
        f"Run {drift.current} against run {drift.reference}: " + "; ".join(parts) + ". "
        f"A PSI below {drift.watch:g} is ordinary noise; above {drift.act:g} the leads coming in have changed."
    )


# --- page parts ----------------------------------------------------------------------------------------------------


def _figure(chart: _Chart, title: str, caption: str, height: int | None = None) -> str:
    """A card with the chart's title, its container (drawn by the page's script) and a plain-language caption."""
    style = f' style="height:{height}px"' if height else ""
    keys = "".join(
        f"<button type='button' class='key{' dashed' if dashed else ''}' aria-pressed='true' data-name='{_esc(name)}'>"
        f"<span class='swatch' style='background:{color}'></span>{_esc(name)}</button>"
        for name, color, dashed in chart.legend()
    )
    return (
        f'<figure class="card"><h3>{_esc(title)}</h3>'
        + (f"<div class='keys' data-keys-for='{chart.id}'>{keys}</div>" if keys else "")
        + f'<div class="chart" id="{chart.id}" data-chart role="img" aria-label="{_esc(title)}: {_esc(caption)}"'
        f"{style}></div><figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _empty(text: str) -> str:
    return f'<p class="empty">{text}</p>'


def _split_verdict(verdict: str) -> tuple[str, str]:
    """A verdict sentence as a headline and its figures: "X ranks better than Y: AUC +0.02 ..." splits at the colon."""
    head, sep, detail = verdict.partition(": ")
    return (head, detail) if sep and head and detail else (verdict, "")


def _headline(data: ReportData) -> tuple[str, str, str]:
    """The page's headline, the figures behind it (small print), and one plain sentence under it."""
    if data.comparisons:
        comparison = data.comparisons[0]
        head, detail = _split_verdict(comparison.verdict or f"{comparison.b} against {comparison.a}")
        challenger = [m for m in data.models if m.model == comparison.b]
        lede = _lift_caption(challenger) if challenger and _top_decile(challenger[0]) else _swap_caption(comparison)
        return head, detail, lede
    best = _best(data.models)
    if best is not None:
        return f"{best.model} on {_plural(best.n, 'lead')} with known outcomes", "", _lift_caption([best])
    if data.runs:
        models = {m for r in data.runs for m in r.errors} | {h.model for h in data.histograms}
        total = sum(r.records for r in data.runs)
        return (
            f"{_plural(total, 'record')} scored by {_plural(len(models), 'model')} in {_plural(len(data.runs), 'run')}",
            "",
            "No outcomes yet, so this report shows what the models said, not whether they were right.",
        )
    if data.histograms:
        return f"Score distributions of {_plural(len(data.histograms), 'model')}", "", ""
    return "Nothing to report yet", "", "This store has no runs: score some leads with mlsm run or mlsm serve."


def _kpis(data: ReportData) -> str:
    tiles: list[tuple[str, str, str]] = []
    if data.runs:
        tiles.append(
            ("records scored", _int(sum(r.records for r in data.runs)), f"in {_plural(len(data.runs), 'run')}")
        )
    best = _best(data.models)
    if best is not None:
        tiles.append(("leads with outcomes", _int(best.n), f"{_pct(_average_rate(best))} converted"))
        if _finite(best.auc) is not None:
            tiles.append(("best ranking (AUC)", _num(best.auc), best.model))
        top = _top_decile(best)
        if top is not None and _finite(top.lift) is not None:
            tiles.append(("top 10% converts", _times(top.lift), f"the average, by {best.model}"))
    elif data.outcomes is not None:
        tiles.append(("outcomes loaded", _int(data.outcomes), "none matched a score yet"))
    if data.drift is not None:
        counts = {s: sum(1 for r in data.drift.rows if r.status == s) for s in STATUS_STYLE}
        if counts["act"]:
            tiles.append(("inputs drifting", _int(counts["act"]), f"to act on, {counts['watch']} to watch"))
        elif counts["watch"]:
            tiles.append(("inputs drifting", "0", f"to act on, {counts['watch']} to watch"))
        else:
            tiles.append(("inputs drifting", "0", f"all {len(data.drift.rows)} stable"))
    if not tiles:
        return ""
    return (
        '<section class="kpis">'
        + "".join(
            f'<div class="kpi"><div class="kpi-label">{_esc(label)}</div><div class="kpi-value">{_esc(value)}</div>'
            f'<div class="kpi-note">{_esc(note)}</div></div>'
            for label, value, note in tiles
        )
        + "</section>"
    )


def _model_table(models: Sequence[ReportModel], colors: dict[str, str]) -> str:
    probabilities = any(_finite(m.brier) is not None for m in models)
    late = any(m.late or m.not_scored for m in models)
    head = [
        "model",
        "leads",
        "converted",
        "AUC (95% CI)",
        "KS",
        *(["Brier", "log loss", "calib. gap"] if probabilities else []),
        *(["not scored", "late"] if late else []),
    ]
    rows = []
    for m in models:
        ci = f" <span class='muted'>({_num(m.auc_ci[0])}–{_num(m.auc_ci[1])})</span>" if m.auc_ci else ""
        cells = [
            _swatch(m.model, colors),
            _int(m.n),
            f"{_int(m.positives)} <span class='muted'>({_pct(_average_rate(m))})</span>",
            f"{_num(m.auc)}{ci}",
            _num(m.ks),
            *([_num(m.brier), _num(m.log_loss), _pct_points(m.ece)] if probabilities else []),
            *([_int(m.not_scored), _int(m.late)] if late else []),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        '<div class="table-wrap"><table class="numbers"><thead><tr>'
        + "".join(f"<th>{_esc(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
        + "<p class='help'>AUC: the chance that a random converter scores above a random non-converter (0.5 is a coin "
        "flip). KS: the widest gap between converters' and non-converters' score distributions."
        + (
            " Brier and log loss: how far scores are from what happened (lower is better); calibration gap: "
            "average distance between score and observed rate."
            if probabilities
            else ""
        )
        + (
            " Not scored: leads with an outcome but no score from before the decision; late: leads whose score was "
            "replaced after the decision (both left out)."
            if late
            else ""
        )
        + "</p>"
    )


def _swatch(model: str, colors: dict[str, str]) -> str:
    return f"<span class='swatch' style='background:{colors.get(model, NEUTRAL)}'></span>{_esc(model)}"


def _decile_tables(models: Sequence[ReportModel], colors: dict[str, str], headline: str | None) -> str:
    parts: list[str] = []
    for m in models:
        if not m.deciles:
            continue
        top_rate = max((_finite(d.rate) or 0.0) for d in m.deciles) or 1.0
        labels = _decile_labels()
        rows = []
        for d in sorted(m.deciles, key=lambda d: d.decile):
            width = 100 * (_finite(d.rate) or 0.0) / top_rate
            band = labels[d.decile - 1] if 1 <= d.decile <= 10 else str(d.decile)
            rows.append(
                f"<tr><td>{d.decile} <span class='muted'>({band})</span></td><td>{_int(d.n)}</td>"
                f"<td>{_int(d.positives)}</td><td class='bar-cell'><span class='bar' style='width:{width:.1f}%;"
                f"background:{colors.get(m.model, NEUTRAL)}'></span><span>{_pct(d.rate)}</span></td>"
                f"<td>{_times(d.lift)}</td><td>{_pct(d.gain)}</td></tr>"
            )
        opened = " open" if m.model == headline or (headline is None and not parts) else ""
        parts.append(
            f"<details class='deciles'{opened}><summary>{_swatch(m.model, colors)} — {_plural(m.n, 'lead')} in ten "
            "equal bands, best scores first</summary><div class='table-wrap'><table class='numbers'><thead><tr>"
            "<th>decile</th><th>leads</th><th>converted</th><th>conversion rate</th><th>lift</th>"
            "<th>conversions reached so far</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div></details>"
        )
    return "".join(parts)


def _comparison_block(
    comparison: ReportComparison, colors: dict[str, str], chart: _Chart | None, repeat_verdict: bool
) -> str:
    """A pair's verdict (unless it is the page's headline already), its figures, and its swap-set chart."""
    stats = [
        ("leads both models scored", _int(comparison.n)),
        (f"AUC of {comparison.a} (champion)", _num(comparison.auc_a)),
        (f"AUC of {comparison.b} (challenger)", _num(comparison.auc_b)),
        (
            "difference",
            _signed(comparison.auc_diff)
            + (
                f"<br><span class='muted'>95% CI {_signed(comparison.auc_diff_ci[0])} to "
                f"{_signed(comparison.auc_diff_ci[1])}</span>"
                if comparison.auc_diff_ci
                else ""
            ),
        ),
        ("chance of a gap this large by luck alone", _p_value(comparison.p_value)),
    ]
    table = (
        "<table class='facts'>"
        + "".join(f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>" for k, v in stats)
        + "</table><p class='help'>The p-value is how often two equally good models would differ this much on "
        "these leads by luck alone: the smaller, the surer the difference.</p>"
    )
    swap = (
        _figure(chart, "Who changes if we switch", _swap_caption(comparison))
        if chart is not None
        else _empty("No swap set was computed for this pair.")
    )
    return (
        f"<div class='pair'><div class='card verdict'><div class='pair-names'>{_swatch(comparison.a, colors)} "
        f"<span class='muted'>champion</span> &nbsp;vs&nbsp; {_swatch(comparison.b, colors)} "
        f"<span class='muted'>challenger</span></div>"
        + (f"<p class='verdict-text'>{_esc(comparison.verdict)}</p>" if repeat_verdict else "<h3>The figures</h3>")
        + f"{table}</div>{swap}</div>"
    )


def _drift_table(drift: ReportDrift) -> str:
    rows = []
    for r in sorted(drift.rows, key=lambda r: (-(_finite(r.psi) or 0.0), r.name)):
        color, background, _, label = STATUS_STYLE[r.status]
        what = "errors" if r.kind == "score" else "missing"
        rows.append(
            f"<tr class='status-{r.status}' style='background:{background}'><td>{_esc(_drift_label(r))}</td>"
            f"<td>{_num(r.psi)}</td><td>{what} {_pct(r.missing_ref)} → {_pct(r.missing_cur)}</td>"
            f"<td><span class='badge' style='color:{color};border-color:{color}'>{label}</span></td></tr>"
        )
    return (
        "<div class='table-wrap'><table class='numbers drift'><thead><tr><th>input or score</th><th>change (PSI)</th>"
        "<th>before → now</th><th>status</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
        f"<p class='help'>PSI compares how values spread over the reference run's ten bands: stable below "
        f"{drift.watch:g}, watch from {drift.watch:g}, act from {drift.act:g}.</p>"
    )


def _runs_table(runs: Sequence[ReportRun]) -> str:
    ordered = sorted(runs, key=lambda r: _when(r.started) or datetime.min.replace(tzinfo=UTC), reverse=True)
    rows = []
    for r in ordered[:10]:
        errors = sum(r.errors.values())
        rows.append(
            f"<tr><td>{_esc(r.run_id)}</td><td>{_esc(_stamp(_when(r.started)))}</td><td>{_esc(r.kind)}</td>"
            f"<td>{_int(r.records)}</td><td>{_int(errors)}</td></tr>"
        )
    more = f"<p class='help'>The latest 10 of {_int(len(ordered))} runs.</p>" if len(ordered) > 10 else ""
    return (
        "<details class='deciles'><summary>Latest runs</summary><div class='table-wrap'><table class='numbers'>"
        "<thead><tr><th>run</th><th>started</th><th>kind</th><th>records</th><th>model errors</th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table></div>{more}</details>"
    )


def _section(anchor: str, title: str, intro: str, body: str) -> str:
    intro_html = f"<p class='intro'>{intro}</p>" if intro else ""
    return f"<section id='{anchor}'><h2>{_esc(title)}</h2>{intro_html}{body}</section>"


# --- the page ------------------------------------------------------------------------------------------------------


@cache
def _echarts_js() -> str:
    try:
        return resources.files("mlsm.evaluation").joinpath("_vendor", "echarts.min.js").read_text(encoding="utf-8")
    except FileNotFoundError:
        from mlsm.errors import MlsmError

        raise MlsmError(
            "the report's charting library (ECharts) is not installed: run scripts/ensure-echarts "
            "(it fetches the npm package echarts@6.1.0 into mlsm/evaluation/_vendor)"
        ) from None


def _script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element (no "</script>", no HTML comment openers)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _mlsm_version() -> str:
    try:
        from importlib.metadata import version

        return version("mlsm")
    except Exception:  # an uninstalled checkout still renders
        return "dev"


def _compare_section(data: ReportData, colors: dict[str, str]) -> tuple[str, list[_Chart]]:
    charts: list[_Chart] = []
    blocks: list[str] = []
    for i, comparison in enumerate(data.comparisons):
        chart = None
        if comparison.entering is not None and comparison.leaving is not None:
            chart = _swap_chart(comparison, colors)
            chart.id = f"chart-swap-{i}"
            charts.append(chart)
        blocks.append(_comparison_block(comparison, colors, chart, repeat_verdict=i > 0))
    intro = "Both models scored the same leads; here is which one put the converters on top."
    return _section("compare", "Champion vs challenger", intro, "".join(blocks)), charts


def _outcomes_section(data: ReportData, colors: dict[str, str]) -> tuple[str, list[_Chart]]:
    evaluated = [m for m in data.models if m.n]
    if not evaluated:
        load = (
            "Load what happened to the leads with <code>mlsm outcomes load FILE --store URL --id-field ID "
            "--outcome COLUMN</code> to see which model ranks them better."
        )
        if data.outcomes:
            missing = f"{_plural(data.outcomes, 'outcome')} loaded, but none could be matched to a score yet. "
        else:
            missing = "No outcomes yet: this report shows what the models said, not whether they were right. "
        return _section("outcomes", "Which leads converted", "", _empty(missing + load)), []
    roc, gain, lift = _roc_chart(evaluated, colors), _gain_chart(evaluated, colors), _lift_chart(evaluated, colors)
    charts = [gain, lift, roc]
    figures = [
        _figure(gain, "Conversions reached by calling the best leads first", _gain_caption(evaluated)),
        _figure(lift, "How much better each score band converts", _lift_caption(evaluated)),
        _figure(roc, "Telling converters from the rest (ROC)", _roc_caption(evaluated)),
    ]
    calibrated = [m for m in evaluated if m.calibration]
    if calibrated:
        chart = _calibration_chart(calibrated, colors)
        charts.append(chart)
        figures.append(_figure(chart, "Can the scores be read as chances?", _calibration_caption(calibrated)))
    headline_model = data.comparisons[0].b if data.comparisons else None
    when = _esc(data.as_of) if data.as_of else "at decision time"
    body = (
        _model_table(evaluated, colors)
        + f"<div class='grid'>{''.join(figures)}</div>"
        + _decile_tables(evaluated, colors, headline_model)
    )
    intro = f"Scores as they were {when}, joined to what happened to each lead."
    return _section("outcomes", "Which leads converted", intro, body), charts


def _scores_section(data: ReportData, colors: dict[str, str]) -> tuple[str, list[_Chart]]:
    charts = [_histogram_chart(i, h, colors.get(h.model, NEUTRAL)) for i, h in enumerate(data.histograms)]
    figures = [_figure(c, h.model, _histogram_caption(h)) for c, h in zip(charts, data.histograms)]
    intro = "How each model's current scores spread across the leads."
    return _section(
        "scores", "What the models said", intro, f"<div class='grid small'>{''.join(figures)}</div>"
    ), charts


def _runs_section(data: ReportData, colors: dict[str, str]) -> tuple[str, list[_Chart]]:
    if not data.runs:
        return _section(
            "runs", "Runs over time", "", _empty("No runs in this store yet: score leads with mlsm run.")
        ), []
    records, errors = _run_charts(data.runs, colors)
    charts = [records]
    figures = _figure(records, "Records scored per run", _runs_caption(data.runs))
    if errors.option["series"]:
        charts.append(errors)
        figures += _figure(errors, "Records a model could not score", _errors_caption(data.runs))
    body = f"<div class='grid'>{figures}</div>{_runs_table(data.runs)}"
    return _section("runs", "Runs over time", "Every batch run and service session in the store.", body), charts


def _drift_section(data: ReportData) -> tuple[str, list[_Chart]]:
    drift = data.drift
    if drift is None or not drift.rows:
        text = "No drift computed: pick a reference run and a current run (mlsm drift) to compare inputs."
        return _section("drift", "Has the incoming data changed?", "", _empty(text)), []
    chart = _drift_chart(drift)
    height = max(240, 70 + 28 * len(drift.rows))
    figure = _figure(chart, "Change since the reference run", _drift_caption(drift), height=height)
    intro = f"Run {_esc(drift.current)} compared with run {_esc(drift.reference)}, input by input."
    body = f"<div class='grid'>{figure}</div>{_drift_table(drift)}"
    return _section("drift", "Has the incoming data changed?", intro, body), [chart]


NAV = (
    ("compare", "Champion vs challenger"),
    ("outcomes", "Outcomes"),
    ("scores", "Scores"),
    ("runs", "Runs"),
    ("drift", "Drift"),
)


def render_report(data: ReportData) -> str:
    """The whole report as one HTML page; ValueError when ``data`` is inconsistent (the message names the part)."""
    _check(data)
    colors = _colors(data)
    parts = [
        _compare_section(data, colors) if data.comparisons else ("", []),
        _outcomes_section(data, colors),
        _scores_section(data, colors) if data.histograms else ("", []),
        _runs_section(data, colors),
        _drift_section(data),
    ]
    sections = "".join(html_part for html_part, _ in parts)
    charts = [chart for _, part_charts in parts for chart in part_charts]
    headline, detail, lede = _headline(data)
    meta = [f"Generated {_stamp(data.generated or datetime.now(UTC))}"]
    if data.source:
        meta.append(f"from {_esc(data.source)}")
    if data.outcomes is not None:
        meta.append(_plural(data.outcomes, "outcome"))
    notes = "".join(f"<p class='note'>{_esc(n)}</p>" for n in data.notes)
    nav = "".join(f"<a href='#{anchor}'>{label}</a>" for anchor, label in NAV if f"id='{anchor}'" in sections)
    specs = [{"id": c.id, "option": c.option, "tooltip": c.tooltip} for c in charts]
    version = _esc(_mlsm_version())
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta name='generator' content='mlsm {version}'>"
        f"<title>{_esc(data.title)}</title><style>{_CSS}</style></head><body>"
        f"<header class='top'><div class='eyebrow'>{_esc(data.title)}</div><h1>{_esc(headline)}</h1>"
        + (f"<p class='detail'>{_esc(detail)}</p>" if detail else "")
        + (f"<p class='lede'>{_esc(lede)}</p>" if lede else "")
        + f"<p class='meta'>{' · '.join(meta)}</p>{notes}</header>"
        f"{_kpis(data)}<nav>{nav}</nav><main>{sections}</main>"
        f"<footer>Made by mlsm {version}. Charts: Apache ECharts (Apache License 2.0). "
        "Hover a chart for the numbers; click a name above a chart to hide or show it.</footer>"
        f"<script id='mlsm-charts' type='application/json'>{_script_json(specs)}</script>"
        f"<script>{_echarts_js()}</script><script>{_JS}</script></body></html>\n"
    )


_CSS = (
    """
:root{--ink:#0f172a;--text:#334155;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:15px/1.5 FONT;-webkit-font-smoothing:antialiased}
header.top,.kpis,nav,main,footer{max-width:1200px;margin:0 auto;padding:0 24px}
header.top{padding-top:32px;padding-bottom:8px}
.eyebrow{text-transform:uppercase;letter-spacing:.08em;font-size:12px;color:var(--muted);font-weight:600}
h1{color:var(--ink);font-size:28px;line-height:1.25;margin:6px 0 8px;max-width:60em;font-weight:700}
.lede{font-size:17px;margin:0 0 8px;max-width:60em}
.detail{font-size:15px;color:var(--ink);margin:0 0 8px;font-variant-numeric:tabular-nums}
.meta,.note{color:var(--muted);font-size:13px;margin:4px 0}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-top:16px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.kpi-label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.kpi-value{font-size:26px;font-weight:700;color:var(--ink);font-variant-numeric:tabular-nums}
.kpi-note{font-size:13px;color:var(--muted);overflow-wrap:anywhere}
nav{position:sticky;top:0;z-index:5;background:var(--bg);display:flex;gap:20px;flex-wrap:wrap;padding-top:14px;
 padding-bottom:10px;border-bottom:1px solid var(--line);margin-top:16px}
nav a{color:var(--accent);text-decoration:none;font-weight:600;font-size:14px}
nav a:hover{text-decoration:underline}
section{padding-top:24px}
h2{color:var(--ink);font-size:21px;margin:8px 0 4px}
h3{color:var(--ink);font-size:15px;margin:0 0 6px;font-weight:600}
.intro{margin:0 0 14px;color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr));gap:16px;margin:16px 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px;margin:0;min-width:0}
.grid.small{grid-template-columns:repeat(auto-fit,minmax(min(100%,330px),1fr))}
.grid.small .chart{height:240px}
.chart{width:100%;height:300px}
figcaption{font-size:14px;color:var(--text);margin-top:6px}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr));gap:16px;margin:16px 0}
.verdict{border-left:5px solid var(--accent)}
.verdict-text{font-size:18px;color:var(--ink);font-weight:600;margin:8px 0 12px}
.pair-names{font-size:14px;margin-bottom:10px}
table{border-collapse:collapse;width:100%;font-size:14px}
.table-wrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:10px;margin:12px 0}
table.numbers th,table.numbers td{padding:7px 12px;text-align:right;white-space:nowrap;
 font-variant-numeric:tabular-nums}
table.numbers th:first-child,table.numbers td:first-child{text-align:left}
table.numbers thead th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);
 border-bottom:1px solid var(--line);font-weight:600}
table.numbers tbody tr+tr td{border-top:1px solid var(--line)}
table.facts th{text-align:left;font-weight:400;color:var(--muted);padding:4px 12px 4px 0}
table.facts td{text-align:right;font-variant-numeric:tabular-nums;color:var(--ink);padding:4px 0;white-space:nowrap}
.muted{color:var(--muted)}
.help{font-size:13px;color:var(--muted);margin:4px 0 0;max-width:60em}
.swatch{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:6px;vertical-align:0}
.keys{display:flex;flex-wrap:wrap;gap:4px 14px;margin:2px 0 4px}
.key{font:inherit;font-size:13px;color:var(--text);background:none;border:0;padding:2px 0;cursor:pointer}
.key.dashed .swatch{height:0;border-top:2px dashed;border-color:inherit;background:none!important;width:14px;
 vertical-align:3px;border-radius:0}
.key[aria-pressed=false]{opacity:.4;text-decoration:line-through}
details.deciles{margin:10px 0}
details.deciles>summary{cursor:pointer;font-weight:600;color:var(--ink);padding:6px 0}
.bar-cell{position:relative;min-width:140px}
.bar-cell .bar{position:absolute;left:8px;top:7px;bottom:7px;opacity:.18;border-radius:3px;max-width:calc(100% - 16px)}
.bar-cell span:last-child{position:relative}
.badge{display:inline-block;border:1.5px solid;border-radius:999px;padding:0 10px;font-weight:700;font-size:12px;
 text-transform:uppercase;letter-spacing:.05em;background:#fff}
.empty{background:var(--card);border:1px dashed #cbd5e1;border-radius:10px;padding:16px;color:var(--muted)}
code{background:#eef2f7;border-radius:4px;padding:1px 5px;font-size:13px}
footer{color:var(--muted);font-size:12px;padding-top:24px;padding-bottom:32px}
@media (max-width:640px){h1{font-size:22px}.kpi-value{font-size:22px}header.top,.kpis,nav,main,footer{padding:0 14px}}
@media print{
 body{background:#fff;font-size:12px}
 nav{display:none}
 .card,.kpi,.table-wrap,tr{break-inside:avoid}
 section{break-before:auto}
 .grid,.pair{grid-template-columns:repeat(auto-fit,minmax(300px,1fr))}
 table.numbers th,table.numbers td{white-space:normal;padding:4px 6px}
 .chart{height:260px}
 .table-wrap{overflow:visible}
 details>summary{list-style:none}
}
"""
).replace("FONT", FONT)

# Reads the chart specs, draws each chart into SVG, shows the tooltip text prepared in Python, and redraws charts
# when the window or the printed page changes their width.
_JS = """
(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("mlsm-charts").textContent);
  function itemTip(p) { return (p.data && p.data.tip) || p.name; }
  function axisTip(ps) {
    if (!ps.length) return "";
    var head = ps[0].axisValueLabel;
    ps.forEach(function (p) { if (p.data && p.data.head) head = p.data.head; });
    var lines = ["<b>" + head + "</b>"];
    ps.forEach(function (p) { if (p.data && p.data.tip) lines.push(p.marker + p.data.tip); });
    return lines.join("<br>");
  }
  var charts = specs.map(function (spec) {
    var el = document.getElementById(spec.id);
    var chart = echarts.init(el, null, {renderer: "svg"});
    var option = spec.option;
    option.tooltip = option.tooltip || {};
    option.tooltip.trigger = spec.tooltip === "axis" ? "axis" : "item";
    option.tooltip.formatter = spec.tooltip === "axis" ? axisTip : itemTip;
    chart.setOption(option);
    return chart;
  });
  charts.forEach(function (chart) {
    var keys = document.querySelector("[data-keys-for='" + chart.getDom().id + "']");
    if (!keys) return;
    keys.querySelectorAll("button.key").forEach(function (button) {
      button.addEventListener("click", function () {
        var shown = button.getAttribute("aria-pressed") !== "true";
        button.setAttribute("aria-pressed", shown ? "true" : "false");
        chart.dispatchAction({type: shown ? "legendSelect" : "legendUnSelect", name: button.dataset.name});
      });
    });
  });
  function resize() { charts.forEach(function (c) { c.resize(); }); }
  window.addEventListener("resize", resize);
  if (window.ResizeObserver) {
    var observer = new ResizeObserver(resize);
    charts.forEach(function (c) { observer.observe(c.getDom()); });
  }
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.setAttribute("open", ""); });
    resize();
  });
  window.addEventListener("afterprint", resize);
})();
"""
