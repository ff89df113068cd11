"""Evaluation statistics against references: scikit-learn and SciPy where they compute the same thing, naive
definitions written out here, a bootstrap for DeLong's variance, and small tables worked out by hand."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from sklearn import metrics

from mlsm.evaluation._stats import (
    IdOrder,
    auc,
    auc_ci,
    auc_undefined,
    brier,
    calibration,
    deciles,
    delong,
    evaluate_model,
    evaluate_pair,
    gain_curve,
    in_unit_interval,
    ks,
    log_loss,
    paired_delong,
    roc_points,
    swap_set,
    top_decile,
    variance_undefined,
)

# rows of (outcome, score) with scores from a small grid, so that ties between and within classes are common
rows = st.lists(st.tuples(st.booleans(), st.integers(0, 12).map(lambda k: k / 4)), min_size=2, max_size=80)


def both_classes(data: list[tuple[bool, float]]) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([r[0] for r in data])
    s = np.array([r[1] for r in data])
    assume(0 < y.sum() < y.size)
    return y, s


def naive_components(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components straight from the definition: every positive against every negative."""
    pos, neg = s[y], s[~y]
    kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return kernel.mean(axis=1), kernel.mean(axis=0)


def naive_delong(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    v10, v01 = naive_components(y, s)
    return v10.mean(), v10.var(ddof=1) / v10.size + v01.var(ddof=1) / v01.size


def seeded(n: int, seed: int, shift: float = 0.8, rate: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < rate
    return y, np.round(rng.normal(size=n) + shift * y, 1)  # rounded: many ties


# --- AUC and DeLong -----------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(rows)
def test_auc_equals_scikit_learn_with_ties(data: list[tuple[bool, float]]) -> None:
    y, s = both_classes(data)
    assert auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
    assert delong(y, s).auc == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)


def test_auc_equals_scikit_learn_on_seeded_data() -> None:
    y, s = seeded(50_000, 1)
    assert auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
    assert auc(y.astype(int), s) == auc(y, s)  # 0/1 integers and booleans alike


@settings(max_examples=200, deadline=None)
@given(rows)
def test_delong_variance_equals_the_naive_definition(data: list[tuple[bool, float]]) -> None:
    y, s = both_classes(data)
    assume(min(y.sum(), (~y).sum()) >= 2)
    value, variance = naive_delong(y, s)
    result = delong(y, s)
    assert result.auc == pytest.approx(value, abs=1e-12)
    assert result.variance == pytest.approx(variance, rel=1e-9, abs=1e-15)


def test_delong_variance_agrees_with_a_bootstrap() -> None:
    y, s = seeded(2_000, 7)
    rng = np.random.default_rng(11)
    resampled = []
    for _ in range(2_000):
        take = rng.integers(0, y.size, y.size)
        resampled.append(auc(y[take], s[take]))  # auc itself is checked against scikit-learn above
    bootstrap = float(np.var(resampled, ddof=1))
    assert delong(y, s).variance == pytest.approx(bootstrap, rel=0.12)


def test_auc_ci_is_the_normal_interval_from_delong() -> None:
    y, s = seeded(3_000, 3)
    value, variance = delong(y, s)
    lo, hi = auc_ci(y, s)
    assert lo == pytest.approx(value - 1.959963984540054 * math.sqrt(variance))
    assert hi == pytest.approx(value + 1.959963984540054 * math.sqrt(variance))
    narrow = auc_ci(y, s, level=0.5)
    assert lo < narrow[0] < value < narrow[1] < hi
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        auc_ci(y, s, level=95)


def test_auc_ci_is_clipped_to_the_unit_interval() -> None:
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    s = np.arange(10, 0, -1) / 10  # one pair out of order: AUC near 1, wide interval
    lo, hi = auc_ci(y, s)
    assert hi == 1.0 and 0 < lo < auc(y, s) < 1


def test_perfect_separation_and_constant_scores() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    assert delong(y, np.arange(6.0)) == (1.0, 0.0)
    assert auc_ci(y, np.arange(6.0)) == (1.0, 1.0)
    assert delong(y, np.ones(6)) == (0.5, 0.0)
    assert ks(y, np.ones(6)) == 0.0


def test_undefined_auc_is_nan_with_a_reason() -> None:
    y = np.zeros(5, int)
    s = np.arange(5.0)
    assert math.isnan(auc(y, s)) and math.isnan(ks(y, s))
    assert all(math.isnan(v) for v in delong(y, s))
    assert all(math.isnan(v) for v in auc_ci(y, s))
    assert all(math.isnan(v) for v in paired_delong(y, s, s))
    assert "no positive outcomes" in auc_undefined(y)
    assert "no negative outcomes" in auc_undefined(np.ones(5))
    assert auc_undefined([]) == "no outcomes"
    # one positive: the AUC exists, its variance does not
    one = np.array([0, 0, 1, 0])
    assert auc(one, s[:4]) == 2 / 3 and math.isnan(delong(one, s[:4]).variance)
    assert auc_undefined(one) is None
    assert "needs 2 of each" in variance_undefined(one)
    assert variance_undefined(np.array([0, 1, 0, 1])) is None
    assert roc_points(y, s).fpr.size == 0


def test_bad_inputs_are_refused_with_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="must be finite numbers: 1 of 3 are NaN or infinite"):
        auc([0, 1, 0], [0.1, float("nan"), 0.3])
    with pytest.raises(ValueError, match=r"outcomes must be 0 or 1 \(or booleans\), got \[2\]"):
        auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"as long as the outcomes \(3\)"):
        auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"must be as many as the scores \(3\)"):
        deciles([0, 1, 1], [0.1, 0.2, 0.3], ["a", "b"])


# --- paired DeLong ------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(rows, st.randoms(use_true_random=False))
def test_paired_delong_variance_equals_the_naive_covariance(data: list[tuple[bool, float]], rnd: random.Random) -> None:
    y, s_a = both_classes(data)
    assume(min(y.sum(), (~y).sum()) >= 2)
    s_b = np.array([rnd.choice([v, 0.25 * rnd.randint(0, 12)]) for v in s_a])
    (a10, a01), (b10, b01) = naive_components(y, s_a), naive_components(y, s_b)
    cov10, cov01 = np.cov(a10, b10), np.cov(a01, b01)
    variance = (cov10[0, 0] + cov10[1, 1] - 2 * cov10[0, 1]) / a10.size + (
        cov01[0, 0] + cov01[1, 1] - 2 * cov01[0, 1]
    ) / a01.size
    result = paired_delong(y, s_a, s_b)
    assert result.diff == pytest.approx(b10.mean() - a10.mean(), abs=1e-12)
    assert result.variance == pytest.approx(max(variance, 0.0), rel=1e-7, abs=1e-13)


def test_paired_delong_p_values_are_uniform_under_the_null() -> None:
    rng = np.random.default_rng(5)
    p_values = []
    for _ in range(400):
        y = rng.random(300) < 0.3
        truth = y * 1.0 + rng.normal(size=300)
        # two models of equal quality: the same signal, independent noise
        p_values.append(paired_delong(y, truth + rng.normal(size=300), truth + rng.normal(size=300)).p_value)
    p = np.array(p_values)
    assert scipy_stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.02 < np.mean(p < 0.05) < 0.09


def test_paired_delong_finds_the_better_model() -> None:
    rng = np.random.default_rng(6)
    y = rng.random(2_000) < 0.3
    truth = y * 1.0 + rng.normal(size=2_000)
    weak, strong = truth + rng.normal(scale=2.0, size=2_000), truth + rng.normal(scale=0.2, size=2_000)
    result = paired_delong(y, weak, strong)
    assert result.diff > 0 and result.auc_b > result.auc_a
    assert result.p_value < 1e-6
    lo, hi = result.ci()
    assert 0 < lo < result.diff < hi
    # the other way round: the same test, the sign flipped
    back = paired_delong(y, strong, weak)
    assert back.diff == -result.diff and back.p_value == pytest.approx(result.p_value)


def test_paired_delong_of_the_same_ranking_is_no_difference() -> None:
    y, s = seeded(500, 9)
    for other in (s, 3 * s + 1):  # a monotone transform ranks alike
        result = paired_delong(y, s, other)
        assert (result.diff, result.variance, result.z, result.p_value) == (0.0, 0.0, 0.0, 1.0)


# --- KS, Brier, log loss, calibration ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")  # its p-value; we compare statistics
@settings(max_examples=200, deadline=None)
@given(rows)
def test_ks_equals_scipy(data: list[tuple[bool, float]]) -> None:
    y, s = both_classes(data)
    assert ks(y, s) == pytest.approx(scipy_stats.ks_2samp(s[y], s[~y]).statistic, abs=1e-12)


def test_ks_equals_scipy_on_seeded_data() -> None:
    y, s = seeded(20_000, 2)
    assert ks(y, s) == pytest.approx(scipy_stats.ks_2samp(s[y], s[~y]).statistic, abs=1e-12)


def test_brier_and_log_loss_equal_scikit_learn() -> None:
    rng = np.random.default_rng(4)
    y = rng.random(5_000) < 0.4
    p = np.clip(rng.beta(2, 3, 5_000) + 0.2 * y, 0.001, 0.999)
    assert brier(y, p) == pytest.approx(metrics.brier_score_loss(y, p), rel=1e-12)
    assert log_loss(y, p) == pytest.approx(metrics.log_loss(y, p, labels=[0, 1]), rel=1e-12)
    # a confident mistake is costly but finite
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15))


def test_probabilities_must_lie_in_the_unit_interval() -> None:
    assert in_unit_interval([0.0, 0.5, 1.0]) and not in_unit_interval([0.5, 1.5])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*max 1.5"):
        brier([0, 1], [0.5, 1.5])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        calibration([0, 1], [-0.1, 0.5])


def test_calibration_by_hand() -> None:
    y = [0, 1, 0, 1, 1, 0]
    s = [0.05, 0.15, 0.15, 0.95, 1.0, 0.1]
    result = calibration(y, s)
    by_bin = {b.lower: b for b in result.bins if b.n}
    assert len(result.bins) == 10 and result.bins[-1].upper == 1.0
    # 0.1 sits on an edge: it opens bin [0.1, 0.2); 1.0 closes the last bin
    assert (by_bin[0.0].n, by_bin[0.0].mean_score, by_bin[0.0].rate) == (1, 0.05, 0.0)
    assert (by_bin[0.1].n, by_bin[0.1].rate) == (3, 1 / 3)
    assert by_bin[0.1].mean_score == pytest.approx(0.4 / 3)
    assert (by_bin[0.9].n, by_bin[0.9].mean_score, by_bin[0.9].rate) == (2, 0.975, 1.0)
    assert result.bins[5].n == 0 and result.bins[5].rate is None
    expected = (1 * 0.05 + 3 * abs(0.4 / 3 - 1 / 3) + 2 * 0.025) / 6
    assert result.ece == pytest.approx(expected)
    assert math.isnan(calibration([], []).ece)


# --- deciles, swap set --------------------------------------------------------------------------------------------


def test_deciles_by_hand_with_ties_broken_by_id() -> None:
    # 12 rows: positions 0-1 go to decile 1, 2 to 2, ..., 6-7 to decile 6, 11 to decile 10 (floor(10 k / 12) + 1);
    # three rows tie at the top and are ranked by id text: "a" < "b" < "c", whatever their order in the input
    ids = ["c", "b", "a", "d", "e", "f", "g", "h", "i", "j", "k", "l"]
    s = [0.9, 0.9, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    y = [0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1]
    table = deciles(y, s, ids)
    assert [d.n for d in table] == [2, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    # decile 1 = a and b (both converted); c (not converted) is pushed to decile 2
    assert [d.positives for d in table] == [2, 0, 1, 0, 0, 2, 0, 0, 0, 1]
    overall = 6 / 12
    assert table[0].rate == 1.0 and table[0].lift == 1.0 / overall
    assert table[1].rate == 0.0 and table[1].lift == 0.0
    assert table[9].rate == 1.0 and table[9].lift == 2.0
    assert [d.gain for d in table] == pytest.approx([2 / 6, 2 / 6, 3 / 6, 3 / 6, 3 / 6, 5 / 6, 5 / 6, 5 / 6, 5 / 6, 1])
    assert (table[0].max_score, table[0].min_score, table[5].max_score, table[5].min_score) == (0.9, 0.9, 0.5, 0.4)
    assert table == deciles(y, s, IdOrder(ids))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 4)), min_size=0, max_size=60), st.randoms())
def test_deciles_do_not_depend_on_row_order(data: list[tuple[bool, int]], rnd: random.Random) -> None:
    ids = [f"id{i}" for i in range(len(data))]
    y, s = [r[0] for r in data], [float(r[1]) for r in data]
    table = deciles(y, s, ids)
    shuffled = list(range(len(data)))
    rnd.shuffle(shuffled)
    again = deciles([y[i] for i in shuffled], [s[i] for i in shuffled], np.array([ids[i] for i in shuffled]))
    assert again == table
    assert deciles(y, s, IdOrder(ids)) == table
    assert sum(d.n for d in table) == len(data) and max(d.n for d in table) - min(d.n for d in table) <= 1


def test_deciles_of_few_rows() -> None:
    table = deciles([1, 0, 0, 1, 0], [5.0, 4.0, 3.0, 2.0, 1.0], list("abcde"))
    assert [d.n for d in table] == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert table[1].rate is None and table[1].lift is None and table[1].gain == 0.5
    assert table[0].lift == 1 / 0.4
    empty = deciles([], [], [])
    assert [d.n for d in empty] == [0] * 10 and empty[0].gain is None
    none_converted = deciles([0, 0], [1.0, 2.0], ["a", "b"])
    assert none_converted[0].lift is None and none_converted[0].gain is None and none_converted[0].rate == 0.0


def test_swap_set_by_hand() -> None:
    # 20 leads: top decile = 2 leads. a ranks 00 and 01 first, b ranks 01 and 02 first.
    ids = [f"{i:02d}" for i in range(20)]
    s_a = np.arange(20, 0, -1.0)
    s_b = s_a.copy()
    s_b[[0, 2]] = s_b[[2, 0]]
    y = np.zeros(20, int)
    y[[0, 1]] = [0, 1]  # 00 leaves (not converted), 01 stays (converted)
    y[2] = 1  # 02 enters (converted)
    swap = swap_set(y, s_a, s_b, ids)
    assert (swap.entering.n, swap.entering.positives, swap.entering.rate) == (1, 1, 1.0)
    assert (swap.leaving.n, swap.leaving.positives, swap.leaving.rate) == (1, 0, 0.0)
    assert (swap.staying.n, swap.staying.positives, swap.staying.rate) == (1, 1, 1.0)
    # all tied in b: the top decile is the first two ids
    tied = swap_set(y, s_a, np.zeros(20), ids)
    assert tied.entering.n == 0 and tied.staying.n == 2
    assert top_decile(np.zeros(20), ids[::-1]).nonzero()[0].tolist() == [18, 19]


def test_swap_groups_are_the_same_size() -> None:
    rng = np.random.default_rng(8)
    y, s_a, s_b = rng.random(1_003) < 0.2, rng.random(1_003), rng.random(1_003)
    swap = swap_set(y, s_a, s_b, [str(i) for i in range(1_003)])
    assert swap.entering.n == swap.leaving.n > 0
    assert swap.entering.n + swap.staying.n == math.ceil(1_003 / 10)


# --- curves -------------------------------------------------------------------------------------------------------


def test_roc_points_equal_scikit_learn_and_thin_within_bound() -> None:
    y, s = seeded(5_000, 12)
    full = roc_points(y, s, max_points=10_000)
    fpr, tpr, thresholds = metrics.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(full.fpr, fpr)
    np.testing.assert_allclose(full.tpr, tpr)
    np.testing.assert_array_equal(full.thresholds[1:], thresholds[1:])
    assert np.trapezoid(full.tpr, full.fpr) == pytest.approx(auc(y, s))
    y, s = seeded(5_000, 13)
    s = s + np.random.default_rng(0).normal(scale=1e-3, size=s.size)  # distinct scores: 5,001 vertices
    full = roc_points(y, s, max_points=10_000)
    thin = roc_points(y, s, max_points=50)
    assert 45 <= len(thin.fpr) <= 50 and full.fpr.size == 5_001  # the budget is used, not exceeded
    assert (thin.fpr[0], thin.tpr[0], thin.fpr[-1], thin.tpr[-1]) == (0, 0, 1, 1)
    # walking both curves by length (fpr + tpr), the thinned one is never more than one step away
    step = 2 / 49
    length = full.fpr + full.tpr
    assert np.abs(np.interp(length, thin.fpr + thin.tpr, thin.fpr) - full.fpr).max() < step
    assert np.abs(np.interp(length, thin.fpr + thin.tpr, thin.tpr) - full.tpr).max() < step


def test_gain_curve_meets_the_deciles() -> None:
    y, s = seeded(1_234, 14)
    ids = [f"lead-{i}" for i in range(1_234)]
    curve = gain_curve(y, s, ids, points=10)
    assert curve.share[0] == 0 and curve.gain[0] == 0 and math.isnan(curve.lift[0])
    assert curve.gain[1:].tolist() == pytest.approx([d.gain for d in deciles(y, s, ids)])
    assert curve.lift[1] == pytest.approx(deciles(y, s, ids)[0].lift)
    fine = gain_curve(y, s, ids, points=100)
    assert fine.share.size == 101 and fine.gain[-1] == 1.0 and np.all(np.diff(fine.gain) >= 0)


# --- one model, one pair ------------------------------------------------------------------------------------------


def test_evaluate_model_gives_the_issue_keys_as_valid_json() -> None:
    y, s = seeded(2_000, 15)
    p = 1 / (1 + np.exp(-s))
    ids = [str(i) for i in range(2_000)]
    result = evaluate_model(y, p, ids).to_dict()
    assert {"n", "positives", "auc", "auc_ci", "ks", "brier", "log_loss", "ece", "deciles"} <= result.keys()
    assert result["auc"] == pytest.approx(metrics.roc_auc_score(y, p))
    assert result["brier"] == pytest.approx(metrics.brier_score_loss(y, p))
    assert [d["decile"] for d in result["deciles"]] == list(range(1, 11))
    json.dumps(result, allow_nan=False)
    raw = evaluate_model(y, s, ids).to_dict()  # scores outside [0, 1]: no probability metrics
    assert raw["brier"] is None and raw["log_loss"] is None and raw["ece"] is None and raw["auc"] == result["auc"]
    nobody = evaluate_model(np.zeros(3), [0.1, 0.2, 0.3], ["a", "b", "c"]).to_dict()
    assert nobody["auc"] is None and nobody["auc_ci"] == [None, None] and "no positive" in nobody["reason"]
    json.dumps(nobody, allow_nan=False)


def test_evaluate_pair_gives_the_issue_keys_as_valid_json() -> None:
    y, s = seeded(2_000, 16)
    ids = IdOrder([str(i) for i in range(2_000)])
    result = evaluate_pair(y, s, s + np.random.default_rng(1).normal(size=2_000), ids).to_dict()
    assert {"n", "auc_a", "auc_b", "auc_diff", "p_value", "swap"} <= result.keys()
    assert result["auc_diff"] == pytest.approx(result["auc_b"] - result["auc_a"])
    assert result["auc_diff"] < 0 and result["p_value"] < 0.001
    assert result["swap"]["entering"]["n"] == result["swap"]["leaving"]["n"]
    json.dumps(result, allow_nan=False)


def test_id_order_subset_ranks_like_the_subset_itself() -> None:
    rng = np.random.default_rng(17)
    ids = [f"{rng.integers(1e9):09d}" for _ in range(500)]
    y, s = rng.random(500) < 0.3, np.round(rng.random(500), 1)
    keep = rng.random(500) < 0.6
    sub_ids = [i for i, k in zip(ids, keep) if k]
    assert deciles(y[keep], s[keep], IdOrder(ids).subset(keep)) == deciles(y[keep], s[keep], sub_ids)
