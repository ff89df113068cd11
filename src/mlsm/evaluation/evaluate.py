"""``mlsm evaluate``: every model's joined scores against the outcomes, every pair compared on the leads both scored,
and a verdict per pair, as a table for people or one JSON object for programs.

Input is what the point-in-time join gives per model: the ids, their scores and outcomes, and how many outcomes had
no usable score (``not_scored``) or only one written after the decision (``late``). The statistics are
:mod:`mlsm.evaluation._stats`'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsm.evaluation._stats import IdOrder, ModelEvaluation, PairEvaluation, evaluate_model, evaluate_pair
from mlsm.evaluation.join import JoinedModel, JoinedOutcomes

__all__ = ["SIGNIFICANCE", "Evaluation", "PairResult", "evaluate", "evaluate_joined", "verdict"]

#: Below this p-value a pair's AUC difference is called a difference in the verdict.
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class PairResult:
    """Two models compared on the ids both scored: ``b`` against ``a`` (differences are b - a)."""

    a: str
    b: str
    result: PairEvaluation

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, **self.result.to_dict(), "verdict": verdict(self)}


@dataclass(frozen=True)
class Evaluation:
    """What ``mlsm evaluate`` prints: per model its statistics, per pair the comparison."""

    as_of: str
    outcomes: int
    models: tuple[tuple[JoinedModel, ModelEvaluation], ...]
    comparisons: tuple[PairResult, ...]
    level: float = 0.95
    extra: dict[str, Any] | None = None  # join counts the caller reports (e.g. outcomes too young)
    unscored: tuple[JoinedModel, ...] = ()  # models asked for that scored none of the outcomes

    def to_dict(self) -> dict[str, Any]:
        """The issue's JSON object (more keys allowed)."""
        return {
            "as_of": self.as_of,
            "outcomes": self.outcomes,
            **(self.extra or {}),
            "models": [
                {"model": scores.model, "not_scored": scores.not_scored, "late": scores.late, **result.to_dict()}
                for scores, result in self.models
            ],
            "comparisons": [pair.to_dict() for pair in self.comparisons],
            "unscored": [{"model": m.model, "not_scored": m.not_scored, "late": m.late} for m in self.unscored],
        }

    def table(self) -> str:
        """A plain-text report: one line per model, its decile table, then each pair and its verdict."""
        extra = self.extra or {}
        key = f" {extra['key']!r}" if "key" in extra else ""
        lines = [f"{self.outcomes:,} outcomes, scores{key} as of {self.as_of}"]
        if extra.get("too_young"):
            lines[0] += f" ({extra['too_young']:,} more left out as too young)"
        for m in self.unscored:
            lines.append(
                f"{m.model}: no score for any of these outcomes ({m.not_scored:,} not scored, {m.late:,} late)"
            )
        if not self.models:
            lines.append("no model has a numeric score for these outcomes")
            return "\n".join(lines)
        header = f"{'MODEL':<24} {'N':>9} {'POS':>7} {'AUC':>6} {'95% CI':>15} {'KS':>6} {'BRIER':>6} {'LOGLOSS':>7}"
        header += f" {'ECE':>6} {'NOT SCORED':>10} {'LATE':>6}"
        lines += ["", header]
        for scores, result in self.models:
            lo, hi = result.auc_ci
            lines.append(
                f"{scores.model:<24} {result.n:>9,} {result.positives:>7,} {_num(result.auc):>6} "
                f"{_num(lo) + '-' + _num(hi):>15} {_num(result.ks):>6} {_num(result.brier, 4):>6} "
                f"{_num(result.log_loss, 4):>7} {_num(result.calibration.ece if result.calibration else None, 4):>6} "
                f"{scores.not_scored:>10,} {scores.late:>6,}"
            )
        for scores, result in self.models:
            lines += ["", f"{scores.model}: deciles (1 = top 10% by score)"]
            lines.append(f"{'DECILE':>6} {'N':>9} {'POS':>7} {'RATE':>6} {'LIFT':>6} {'GAIN':>6}")
            for d in result.deciles:
                lines.append(
                    f"{d.decile:>6} {d.n:>9,} {d.positives:>7,} {_num(d.rate)} {_num(d.lift, 2):>6} {_num(d.gain):>6}"
                )
        for pair in self.comparisons:
            swap = pair.result.swap
            lines += [
                "",
                f"{pair.b} vs {pair.a} on {pair.result.n:,} leads both scored: top decile swap "
                f"{swap.entering.n:,} entering (rate {_num(swap.entering.rate)}), "
                f"{swap.leaving.n:,} leaving (rate {_num(swap.leaving.rate)})",
            ]
        if self.comparisons:
            lines.append("")
            lines += [verdict(pair) for pair in self.comparisons]
        return "\n".join(lines)


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}f}"


def verdict(pair: PairResult) -> str:
    """One sentence: which of the two ranks better, by how much, how sure, on how many leads."""
    test, n = pair.result.test, pair.result.n
    lo, hi = pair.result.diff_ci
    if pair.result.reason or test.diff != test.diff:
        return f"{pair.b} vs {pair.a}: cannot compare on {n:,} leads ({pair.result.reason or 'AUC undefined'})"
    diff = test.diff
    if test.p_value < SIGNIFICANCE and diff != 0:
        better, worse = (pair.b, pair.a) if diff > 0 else (pair.a, pair.b)
        if diff < 0:
            diff, lo, hi = -diff, -hi, -lo
        return f"{better} ranks better than {worse}: {_detail(diff, lo, hi, test.p_value, n, small=True)}"
    return f"no significant difference between {pair.b} and {pair.a}: {_detail(diff, lo, hi, test.p_value, n)}"


def _detail(diff: float, lo: float, hi: float, p: float, n: int, *, small: bool = False) -> str:
    # three decimals; a real (significant) difference below 0.001 gets the digits it needs not to read as +0.000
    digits = 3
    if small and 0 < abs(diff) < 0.001:
        digits = min(9, 1 - math.floor(math.log10(abs(diff))))
    p_text = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    return f"AUC {diff:+.{digits}f} (95% CI {lo:+.{digits}f} to {hi:+.{digits}f}), {p_text}, on {n:,} leads"


def evaluate(
    scored: Sequence[JoinedModel],
    *,
    as_of: str,
    outcomes: int,
    level: float = 0.95,
    extra: dict[str, Any] | None = None,
) -> Evaluation:
    """Evaluate every model with at least one scored outcome and compare every pair over the ids both scored, ``a``
    before ``b`` in the order given."""
    models = tuple(
        (item, evaluate_model(item.outcomes, item.scores, IdOrder(item.ids), level)) for item in scored if item.ids.size
    )
    pairs = []
    for i, (a, _) in enumerate(models):
        for b, _ in models[i + 1 :]:
            common, in_a, in_b = _common_ids(a.ids, b.ids)
            if not common.size:
                continue
            result = evaluate_pair(a.outcomes[in_a], a.scores[in_a], b.scores[in_b], IdOrder(common), level)
            pairs.append(PairResult(a.model, b.model, result))
    unscored = tuple(item for item in scored if not item.ids.size)
    return Evaluation(as_of, outcomes, models, tuple(pairs), level, extra, unscored)


def evaluate_joined(joined: JoinedOutcomes, models: Sequence[str] | None = None, level: float = 0.95) -> Evaluation:
    """:func:`evaluate` over the join's models (``models`` in that order, default: by name@version), reporting the
    outcomes left out as too young."""
    order = list(models) if models else sorted(joined.models)
    extra = {"key": joined.key, "too_young": joined.too_young}
    picked = [joined.models[m] for m in order if m in joined.models]
    return evaluate(picked, as_of=joined.as_of, outcomes=joined.outcomes, level=level, extra=extra)


def _common_ids(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ids in both (each unique), with their positions in ``a`` and ``b``; a binary search when both are in id
    order (as the join gives them), else a sort of both."""
    if a.dtype.kind == "U" and b.dtype.kind == "U" and _ascending(a) and _ascending(b):
        at = np.searchsorted(a, b)
        found = at < a.shape[0]
        found[found] = a[at[found]] == b[found]
        in_b = np.flatnonzero(found)
        return b[in_b], at[in_b], in_b
    return np.intersect1d(a, b, assume_unique=True, return_indices=True)


def _ascending(ids: np.ndarray) -> bool:
    return ids.shape[0] < 2 or bool(np.all(ids[:-1] < ids[1:]))
