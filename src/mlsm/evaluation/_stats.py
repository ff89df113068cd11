"""Statistics of scores against outcomes: ranking (AUC with DeLong's variance, KS), probability quality (Brier, log
loss, calibration), deciles with lift and gain, the swap set between two models, and points for charts.

Inputs are one-dimensional arrays of equal length: ``y`` the outcomes (0/1 or bool), ``s`` the scores, which must be
finite (the caller drops NaN and infinite scores first; a non-finite score is refused with a ValueError), and ``ids``
the record ids as text, used only to break ties between equal scores (ascending id text, so that every store gives
the same deciles). A statistic the data cannot define (an AUC without positives) is NaN; ``auc_undefined`` and
``variance_undefined`` say why. Everything is vectorized numpy: one sort per statistic, no loop over rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "Calibration",
    "CalibrationBin",
    "Decile",
    "Delong",
    "GainCurve",
    "IdOrder",
    "ModelEvaluation",
    "PairEvaluation",
    "PairedDelong",
    "RocCurve",
    "SwapGroup",
    "SwapSet",
    "auc",
    "auc_ci",
    "auc_undefined",
    "brier",
    "calibration",
    "deciles",
    "delong",
    "evaluate_model",
    "evaluate_pair",
    "gain_curve",
    "in_unit_interval",
    "ks",
    "log_loss",
    "paired_delong",
    "roc_points",
    "swap_set",
    "top_decile",
    "variance_undefined",
]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.intp]

NAN = float("nan")


# --- inputs -------------------------------------------------------------------------------------------------------


def _outcomes(y: Any) -> Bools:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"outcomes must be a one-dimensional array, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr
    if arr.size and not bool(((arr == 0) | (arr == 1)).all()):
        bad = arr[(arr != 0) & (arr != 1)][:3].tolist()
        raise ValueError(f"outcomes must be 0 or 1 (or booleans), got {bad}")
    return arr == 1


def _scores(s: Any, n: int, what: str = "scores") -> Floats:
    arr = np.asarray(s, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{what} must be a one-dimensional array as long as the outcomes ({n}), got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not bool(finite.all()):
        bad = int(arr.size - np.count_nonzero(finite))
        raise ValueError(f"{what} must be finite numbers: {bad} of {n} are NaN or infinite; drop those rows first")
    return arr


def _inputs(y: Any, s: Any) -> tuple[Bools, Floats]:
    outcomes = _outcomes(y)
    return outcomes, _scores(s, outcomes.shape[0])


def auc_undefined(y: Any) -> str | None:
    """Why the AUC cannot be computed for these outcomes (no positives or no negatives), or None when it can."""
    outcomes = _outcomes(y)
    positives = int(np.count_nonzero(outcomes))
    if outcomes.size == 0:
        return "no outcomes"
    if positives == 0:
        return f"no positive outcomes among {outcomes.size:,}: the AUC needs both classes"
    if positives == outcomes.size:
        return f"no negative outcomes among {outcomes.size:,}: the AUC needs both classes"
    return None


def variance_undefined(y: Any) -> str | None:
    """Why DeLong's variance (and so a CI or p-value) cannot be computed (fewer than 2 of a class), or None."""
    reason = auc_undefined(y)
    if reason is not None:
        return reason
    outcomes = _outcomes(y)
    positives = int(np.count_nonzero(outcomes))
    if min(positives, outcomes.size - positives) < 2:
        return (
            f"{positives} positive and {outcomes.size - positives} negative outcomes: DeLong's variance needs 2 of each"
        )
    return None


# --- ranks --------------------------------------------------------------------------------------------------------


def _tie_groups(ordered: Floats) -> tuple[Ints, Ints]:
    """Start and end (exclusive) of each run of equal values in a sorted array."""
    n = ordered.shape[0]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1]))) if n else np.empty(0, np.intp)
    ends = np.concatenate((starts[1:], [n])).astype(np.intp)
    return starts, ends


def _midranks(ordered: Floats) -> Floats:
    """1-based ranks of a sorted array, tied values sharing the mean of their positions."""
    starts, ends = _tie_groups(ordered)
    return np.repeat((starts + ends + 1) / 2.0, ends - starts)


def _placements(y: Bools, s: Floats) -> tuple[Floats, Floats]:
    """DeLong's structural components, in the input order of the positives and of the negatives.

    For a positive: the share of negatives scored below it (ties count half); for a negative: the share of positives
    scored above it. Their means are both the AUC. Computed from midranks (Sun & Xu, 2014): one sort of all scores,
    the positives' and negatives' own ranks read off the same order.
    """
    m = int(np.count_nonzero(y))
    n = y.shape[0] - m
    order = np.argsort(s)
    ordered, pos = s[order], y[order]
    overall = _midranks(ordered)
    # the positives (negatives) in sorted order are themselves sorted: their own midranks need no second sort
    placed = np.empty(y.shape[0])
    placed[order[pos]] = (overall[pos] - _midranks(ordered[pos])) / n
    placed[order[~pos]] = 1.0 - (overall[~pos] - _midranks(ordered[~pos])) / m
    # back in input order, so that two models' components pair up row by row
    return placed[y], placed[~y]


class Delong(NamedTuple):
    """A model's AUC and DeLong's variance of it (NaN when undefined: see ``variance_undefined``)."""

    auc: float
    variance: float

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """The normal-approximation confidence interval at ``level``, clipped to [0, 1]."""
        return _interval(self.auc, self.variance, level, 0.0, 1.0)


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _interval(center: float, variance: float, level: float, lo: float, hi: float) -> tuple[float, float]:
    z = _z(level)
    half = z * math.sqrt(variance) if variance >= 0 else NAN
    if math.isnan(center) or math.isnan(half):
        return (NAN, NAN)
    return (max(lo, center - half), min(hi, center + half))


def auc(y: Any, s: Any) -> float:
    """The AUC (Mann–Whitney: the chance that a positive scores above a negative, ties counting half); NaN without
    both classes."""
    outcomes, scores = _inputs(y, s)
    m = int(np.count_nonzero(outcomes))
    n = outcomes.shape[0] - m
    if m == 0 or n == 0:
        return NAN
    order = np.argsort(scores)
    ranks = _midranks(scores[order])
    return float((ranks[outcomes[order]].sum() - m * (m + 1) / 2.0) / (m * n))


def delong(y: Any, s: Any) -> Delong:
    """The AUC and DeLong's variance of it (placement values); O(n log n). The variance is NaN with fewer than two
    positives or negatives, the AUC NaN without both classes."""
    outcomes, scores = _inputs(y, s)
    m = int(np.count_nonzero(outcomes))
    n = outcomes.shape[0] - m
    if m == 0 or n == 0:
        return Delong(NAN, NAN)
    v10, v01 = _placements(outcomes, scores)
    value = float(v10.mean())
    if m < 2 or n < 2:
        return Delong(value, NAN)
    return Delong(value, float(v10.var(ddof=1) / m + v01.var(ddof=1) / n))


def auc_ci(y: Any, s: Any, level: float = 0.95) -> tuple[float, float]:
    """The AUC's confidence interval at ``level`` from DeLong's variance (normal approximation, clipped to [0, 1]);
    (NaN, NaN) when undefined. With perfectly separated classes the variance is 0 and the interval a point."""
    _z(level)  # a bad level is refused before the work
    return delong(y, s).ci(level)


class PairedDelong(NamedTuple):
    """Two models' AUCs on the same rows, ``diff = auc_b - auc_a`` (the gain of switching from a to b), DeLong's
    variance of the difference, its z statistic and two-sided p-value."""

    auc_a: float
    auc_b: float
    diff: float
    variance: float
    z: float
    p_value: float

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """The normal-approximation confidence interval of ``diff`` at ``level`` (within [-1, 1])."""
        return _interval(self.diff, self.variance, level, -1.0, 1.0)


def paired_delong(y: Any, s_a: Any, s_b: Any) -> PairedDelong:
    """DeLong's test of two correlated AUCs: both scores on the same rows, the covariance of their structural
    components taken into account. Identical rankings give diff 0 and p 1."""
    outcomes = _outcomes(y)
    a = _scores(s_a, outcomes.shape[0], "scores of a")
    b = _scores(s_b, outcomes.shape[0], "scores of b")
    m = int(np.count_nonzero(outcomes))
    n = outcomes.shape[0] - m
    if m == 0 or n == 0:
        return PairedDelong(NAN, NAN, NAN, NAN, NAN, NAN)
    v10_a, v01_a = _placements(outcomes, a)
    v10_b, v01_b = _placements(outcomes, b)
    auc_a, auc_b = float(v10_a.mean()), float(v10_b.mean())
    diff = auc_b - auc_a
    if m < 2 or n < 2:
        return PairedDelong(auc_a, auc_b, diff, NAN, NAN, NAN)
    # the variance of the per-row differences equals S_aa + S_bb - 2 S_ab, without the cancellation
    variance = float((v10_b - v10_a).var(ddof=1) / m + (v01_b - v01_a).var(ddof=1) / n)
    if variance == 0.0:
        z = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    else:
        z = diff / math.sqrt(variance)
    return PairedDelong(auc_a, auc_b, diff, variance, z, math.erfc(abs(z) / math.sqrt(2.0)))


def ks(y: Any, s: Any) -> float:
    """The Kolmogorov–Smirnov statistic: the largest gap between the score distributions (CDFs) of positives and
    negatives, over all thresholds (each distinct score); NaN without both classes."""
    outcomes, scores = _inputs(y, s)
    m = int(np.count_nonzero(outcomes))
    n = outcomes.shape[0] - m
    if m == 0 or n == 0:
        return NAN
    order = np.argsort(scores)
    _, ends = _tie_groups(scores[order])
    pos_below = np.cumsum(outcomes[order])[ends - 1]
    neg_below = ends - pos_below
    return float(np.abs(pos_below / m - neg_below / n).max())


# --- probabilities ------------------------------------------------------------------------------------------------


def in_unit_interval(s: Any) -> bool:
    """Whether every score lies in [0, 1], so that it can be read as a probability (Brier, log loss, calibration)."""
    arr = np.asarray(s, dtype=np.float64)
    return bool(((arr >= 0.0) & (arr <= 1.0)).all())


def _probabilities(y: Any, s: Any) -> tuple[Bools, Floats]:
    outcomes, scores = _inputs(y, s)
    if not in_unit_interval(scores):
        low, high = float(scores.min()), float(scores.max())
        raise ValueError(
            f"scores must lie in [0, 1] to be read as probabilities (min {low!r}, max {high!r}); "
            "check in_unit_interval first"
        )
    return outcomes, scores


def brier(y: Any, s: Any) -> float:
    """The Brier score: the mean squared difference between score (a probability) and outcome; NaN when empty."""
    outcomes, scores = _probabilities(y, s)
    if outcomes.size == 0:
        return NAN
    return float(np.mean((scores - outcomes) ** 2))


def log_loss(y: Any, s: Any, eps: float = 1e-15) -> float:
    """The mean negative log-likelihood of the outcomes under the scores, scores clipped to [eps, 1 - eps] so that a
    confident mistake costs a large finite amount; NaN when empty."""
    outcomes, scores = _probabilities(y, s)
    if outcomes.size == 0:
        return NAN
    p = np.clip(scores, eps, 1.0 - eps)
    return float(-np.mean(np.where(outcomes, np.log(p), np.log1p(-p))))


@dataclass(frozen=True)
class CalibrationBin:
    """Scores in [lower, upper) (the last bin includes 1): how many, their mean, and the observed positive rate
    (None for an empty bin)."""

    lower: float
    upper: float
    n: int
    mean_score: float | None
    rate: float | None


@dataclass(frozen=True)
class Calibration:
    """Equal-width bins over [0, 1] and the expected calibration error: sum of n_b / N * |mean score - rate|."""

    bins: tuple[CalibrationBin, ...]
    ece: float

    def to_dict(self) -> dict[str, Any]:
        return {"ece": _json_float(self.ece), "bins": [asdict(b) for b in self.bins]}


def calibration(y: Any, s: Any, bins: int = 10) -> Calibration:
    """Calibration in ``bins`` equal-width bins over [0, 1] (edges 0, 1/bins, ..., 1; a score of exactly 1 falls
    in the last bin) and the ECE; ECE NaN when empty. Scores must lie in [0, 1]."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins!r}")
    outcomes, scores = _probabilities(y, s)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # searchsorted against the same float edges that are reported, so a score on an edge goes where the edge says
    which = np.minimum(np.searchsorted(edges, scores, side="right") - 1, bins - 1)
    counts = np.bincount(which, minlength=bins)
    score_sums = np.bincount(which, weights=scores, minlength=bins)
    pos = np.bincount(which, weights=outcomes.astype(np.float64), minlength=bins)
    out = []
    for b in range(bins):
        count = int(counts[b])
        mean = float(score_sums[b] / count) if count else None
        rate = float(pos[b] / count) if count else None
        out.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), count, mean, rate))
    total = outcomes.size
    if total == 0:
        return Calibration(tuple(out), NAN)
    filled = counts > 0
    gap = np.abs(score_sums[filled] / counts[filled] - pos[filled] / counts[filled])
    return Calibration(tuple(out), float((counts[filled] * gap).sum() / total))


# --- ranking by score, ties by id ----------------------------------------------------------------------------------


class IdOrder:
    """Record ids with their ascending text order computed once, for callers that rank several models over the same
    ids (sorting a million ids as text takes most of a second; ranking by score after that is fast)."""

    __slots__ = ("order",)

    def __init__(self, ids: Sequence[str] | npt.NDArray[Any]) -> None:
        text = _as_text(_id_array(ids))
        if text.shape[0] > 1 and bool(np.all(text[:-1] <= text[1:])):  # already in id order (the join's rows)
            self.order: Ints = np.arange(text.shape[0], dtype=np.intp)
        else:
            self.order = np.argsort(text, kind="stable")

    def __len__(self) -> int:
        return int(self.order.shape[0])

    def subset(self, rows: Bools) -> IdOrder:
        """The order of ``ids[rows]`` (a boolean mask), derived without sorting again: e.g. the ids two models both
        scored."""
        mask = np.asarray(rows, dtype=np.bool_)
        if mask.shape != (len(self),):
            raise ValueError(f"rows must be a boolean mask of length {len(self)}, got shape {mask.shape}")
        new_index = np.cumsum(mask) - 1
        out = IdOrder.__new__(IdOrder)
        out.order = new_index[self.order[mask[self.order]]]
        return out


def _id_array(ids: Sequence[str] | npt.NDArray[Any]) -> npt.NDArray[Any]:
    arr = ids if isinstance(ids, np.ndarray) else np.asarray(list(ids), dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    return arr


def _as_text(ids: npt.NDArray[Any]) -> npt.NDArray[Any]:
    # numpy's fixed-width text sorts by code point, as Python compares str
    return ids if ids.dtype.kind == "U" else ids.astype(str)


def _ranking(s: Floats, ids: Sequence[str] | npt.NDArray[Any] | IdOrder) -> Ints:
    """Row indices from the highest score to the lowest, equal scores in ascending id text order."""
    n = s.shape[0]
    if len(ids) != n:
        raise ValueError(f"ids must be as many as the scores ({n}), got {len(ids)}")
    if isinstance(ids, IdOrder):
        # a stable sort by score of the rows in id order keeps id order within equal scores
        return ids.order[np.argsort(-s[ids.order], kind="stable")]
    order = np.argsort(-s)
    ordered = s[order]
    tied = np.zeros(n, np.bool_)
    if n > 1:
        same = ordered[1:] == ordered[:-1]
        tied[1:] |= same
        tied[:-1] |= same
    if not tied.any():
        return order
    # only rows sharing a score need the (slow) text sort; re-sorted by (score, id) they fill the same positions
    rows = np.sort(order[tied])  # input order first, so that even repeated ids rank the same every time
    text = _as_text(_id_array(ids)[rows])
    by_id = np.argsort(text, kind="stable")
    rows = rows[by_id][np.argsort(-s[rows[by_id]], kind="stable")]
    order[tied] = rows
    return order


def _group_of_position(n: int, groups: int) -> Ints:
    """The group (0-based) of each position in ranked order: position k goes to floor(groups * k / n), so group sizes
    differ by at most one, the larger groups spread evenly."""
    return (np.arange(n, dtype=np.int64) * groups // max(n, 1)).astype(np.intp)


def _json_float(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


@dataclass(frozen=True)
class Decile:
    """One decile (1 = the highest scores): its rows, positives, positive rate, lift (rate / overall rate), and the
    cumulative gain (share of all positives in deciles 1..d). None where undefined (empty decile, no positives)."""

    decile: int
    n: int
    positives: int
    rate: float | None
    lift: float | None
    gain: float | None
    min_score: float | None
    max_score: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def deciles(y: Any, s: Any, ids: Sequence[str] | npt.NDArray[Any] | IdOrder, groups: int = 10) -> tuple[Decile, ...]:
    """The decile table: rows ranked by score (highest first, equal scores by ascending id text), the row at 0-based
    position k in that order going to decile floor(10 k / n) + 1; always ``groups`` entries (some empty when
    n < groups)."""
    if groups < 1:
        raise ValueError(f"groups must be at least 1, got {groups!r}")
    outcomes, scores = _inputs(y, s)
    order = _ranking(scores, ids)
    n = outcomes.shape[0]
    group = _group_of_position(n, groups)
    counts = np.bincount(group, minlength=groups)
    pos = np.bincount(group, weights=outcomes[order].astype(np.float64), minlength=groups).astype(np.int64)
    total_pos = int(pos.sum())
    overall = total_pos / n if n else NAN
    ranked = scores[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    cumulative = np.cumsum(pos)
    out = []
    for g in range(groups):
        count, positives = int(counts[g]), int(pos[g])
        rate = positives / count if count else None
        lift = rate / overall if rate is not None and overall > 0 else None
        gain = float(cumulative[g] / total_pos) if total_pos else None
        hi = float(ranked[starts[g]]) if count else None
        lo = float(ranked[starts[g] + count - 1]) if count else None
        out.append(Decile(g + 1, count, positives, rate, lift, gain, lo, hi))
    return tuple(out)


def top_decile(s: Any, ids: Sequence[str] | npt.NDArray[Any] | IdOrder) -> Bools:
    """A mask of the rows in decile 1 by the rule of ``deciles``: the first ceil(n / 10) rows by score, then id."""
    scores = _scores(s, len(ids))
    order = _ranking(scores, ids)
    mask = np.zeros(scores.shape[0], np.bool_)
    mask[order[_group_of_position(scores.shape[0], 10) == 0]] = True
    return mask


@dataclass(frozen=True)
class SwapGroup:
    """Leads in one part of the swap set: how many, how many converted, and their conversion rate (None if empty)."""

    n: int
    positives: int
    rate: float | None


@dataclass(frozen=True)
class SwapSet:
    """Switching from model a to model b: leads entering b's top decile (not in a's), leaving it (in a's, not b's),
    and staying (in both). Top deciles have the same size, so as many enter as leave."""

    entering: SwapGroup
    leaving: SwapGroup
    staying: SwapGroup

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _swap_group(y: Bools, mask: Bools) -> SwapGroup:
    count = int(np.count_nonzero(mask))
    positives = int(np.count_nonzero(y & mask))
    return SwapGroup(count, positives, positives / count if count else None)


def swap_set(y: Any, s_a: Any, s_b: Any, ids: Sequence[str] | npt.NDArray[Any] | IdOrder) -> SwapSet:
    """The swap set of the top decile when switching from scores ``s_a`` to ``s_b`` on the same rows."""
    outcomes = _outcomes(y)
    a = _scores(s_a, outcomes.shape[0], "scores of a")
    b = _scores(s_b, outcomes.shape[0], "scores of b")
    top_a, top_b = top_decile(a, ids), top_decile(b, ids)
    return SwapSet(
        entering=_swap_group(outcomes, top_b & ~top_a),
        leaving=_swap_group(outcomes, top_a & ~top_b),
        staying=_swap_group(outcomes, top_a & top_b),
    )


# --- curves for charts --------------------------------------------------------------------------------------------


class RocCurve(NamedTuple):
    """ROC vertices from (0, 0) to (1, 1): false and true positive rates when every score >= threshold is called
    positive (the first threshold is +inf)."""

    fpr: Floats
    tpr: Floats
    thresholds: Floats


def roc_points(y: Any, s: Any, max_points: int = 200) -> RocCurve:
    """ROC vertices (one per distinct score), thinned to at most ``max_points`` along the curve's length so that the
    drawn curve stays within 2 / (max_points - 1) (in fpr + tpr) of the full one; empty without both classes."""
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points!r}")
    outcomes, scores = _inputs(y, s)
    m = int(np.count_nonzero(outcomes))
    n = outcomes.shape[0] - m
    if m == 0 or n == 0:
        empty = np.empty(0)
        return RocCurve(empty, empty, empty)
    order = np.argsort(-scores)
    ordered = scores[order]
    _, ends = _tie_groups(ordered)
    tp = np.cumsum(outcomes[order])[ends - 1]
    fpr = np.concatenate(([0.0], (ends - tp) / n))
    tpr = np.concatenate(([0.0], tp / m))
    thresholds = np.concatenate(([np.inf], ordered[ends - 1]))
    if fpr.shape[0] > max_points:
        # the curve is monotone, so fpr + tpr is the length walked along it; keep the vertex at or after each
        # evenly spaced length: what is dropped between two kept vertices is shorter than one step
        length = fpr + tpr
        keep = np.unique(np.searchsorted(length, np.linspace(0.0, 2.0, max_points), side="left"))
        keep = np.unique(np.concatenate(([0], np.minimum(keep, fpr.shape[0] - 1), [fpr.shape[0] - 1])))
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    return RocCurve(fpr, tpr, thresholds)


class GainCurve(NamedTuple):
    """Cumulative gain: contacting the top ``share`` of leads (by score, ties by id) finds ``gain`` of all positives;
    ``lift = gain / share`` (NaN at share 0)."""

    share: Floats
    gain: Floats
    lift: Floats


def gain_curve(y: Any, s: Any, ids: Sequence[str] | npt.NDArray[Any] | IdOrder, points: int = 100) -> GainCurve:
    """The gain curve at ``points`` evenly spaced shares (after the first ceil(i n / points) rows, i = 0..points, as
    the decile rule cuts them, so points=10 gives the deciles' gains); gain NaN without positives."""
    if points < 1:
        raise ValueError(f"points must be at least 1, got {points!r}")
    outcomes, scores = _inputs(y, s)
    n = outcomes.shape[0]
    if n == 0:
        empty = np.empty(0)
        return GainCurve(empty, empty, empty)
    order = _ranking(scores, ids)
    found = np.concatenate(([0], np.cumsum(outcomes[order])))
    cuts = np.unique((np.arange(points + 1, dtype=np.int64) * n + points - 1) // points)
    share = cuts / n
    total = int(found[-1])
    gain = found[cuts] / total if total else np.full(cuts.shape[0], NAN)
    lift = np.full(cuts.shape[0], NAN)
    lift[share > 0] = gain[share > 0] / share[share > 0]
    return GainCurve(share, gain, lift)


# --- one model, one pair --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelEvaluation:
    """What ``mlsm evaluate`` reports for one model over the rows given; None/NaN where undefined (see ``reason``)."""

    n: int
    positives: int
    auc: float
    auc_ci: tuple[float, float]
    ks: float
    brier: float | None
    log_loss: float | None
    calibration: Calibration | None
    deciles: tuple[Decile, ...]
    reason: str | None  # why the AUC or its CI is undefined, if it is

    def to_dict(self) -> dict[str, Any]:
        """The issue's JSON keys; NaN becomes None (null)."""
        return {
            "n": self.n,
            "positives": self.positives,
            "auc": _json_float(self.auc),
            "auc_ci": [_json_float(v) for v in self.auc_ci],
            "ks": _json_float(self.ks),
            "brier": _json_float(self.brier),
            "log_loss": _json_float(self.log_loss),
            "ece": _json_float(self.calibration.ece) if self.calibration else None,
            "calibration": self.calibration.to_dict()["bins"] if self.calibration else None,
            "deciles": [d.to_dict() for d in self.deciles],
            "reason": self.reason,
        }


def evaluate_model(
    y: Any, s: Any, ids: Sequence[str] | npt.NDArray[Any] | IdOrder, level: float = 0.95
) -> ModelEvaluation:
    """Every per-model statistic at once: AUC with its DeLong CI at ``level``, KS, and when the scores lie in [0, 1]
    Brier, log loss and calibration; deciles always."""
    outcomes, scores = _inputs(y, s)
    result = delong(outcomes, scores)
    probabilities = in_unit_interval(scores)
    return ModelEvaluation(
        n=int(outcomes.shape[0]),
        positives=int(np.count_nonzero(outcomes)),
        auc=result.auc,
        auc_ci=result.ci(level),
        ks=ks(outcomes, scores),
        brier=brier(outcomes, scores) if probabilities else None,
        log_loss=log_loss(outcomes, scores) if probabilities else None,
        calibration=calibration(outcomes, scores) if probabilities else None,
        deciles=deciles(outcomes, scores, ids),
        reason=variance_undefined(outcomes),
    )


@dataclass(frozen=True)
class PairEvaluation:
    """What ``mlsm evaluate`` reports for a pair over the rows both scored: DeLong's paired test and the swap set."""

    n: int
    test: PairedDelong
    diff_ci: tuple[float, float]
    swap: SwapSet
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """The issue's JSON keys; NaN becomes None (null)."""
        return {
            "n": self.n,
            "auc_a": _json_float(self.test.auc_a),
            "auc_b": _json_float(self.test.auc_b),
            "auc_diff": _json_float(self.test.diff),
            "auc_diff_ci": [_json_float(v) for v in self.diff_ci],
            "z": _json_float(self.test.z),
            "p_value": _json_float(self.test.p_value),
            "swap": self.swap.to_dict(),
            "reason": self.reason,
        }


def evaluate_pair(
    y: Any, s_a: Any, s_b: Any, ids: Sequence[str] | npt.NDArray[Any] | IdOrder, level: float = 0.95
) -> PairEvaluation:
    """The comparison of switching from a to b on the same rows: paired DeLong (diff = b - a, its CI at ``level``)
    and the top-decile swap set."""
    outcomes = _outcomes(y)
    test = paired_delong(outcomes, s_a, s_b)
    return PairEvaluation(
        n=int(outcomes.shape[0]),
        test=test,
        diff_ci=test.ci(level),
        swap=swap_set(outcomes, s_a, s_b, ids),
        reason=variance_undefined(outcomes),
    )
