"""Drift: PSI by its formula and on shifted data, and profiles that merge exactly (any split of the rows into
chunks, in any order, equals one pass), survive JSON, and give quantiles within their stated error."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsm.evaluation._drift import (
    CATEGORY_LIMIT,
    MANTISSA_BITS,
    CategoricalProfile,
    NumericProfile,
    PsiThresholds,
    merge_profiles,
    profile_from_json,
    psi,
    psi_categorical,
    psi_numeric,
)

ERROR = 2.0 ** -(MANTISSA_BITS + 1)  # the stated relative error of a quantile read from a numeric profile


def chunks(values: list, cuts: list[int]) -> list[list]:
    bounds = sorted({min(c, len(values)) for c in cuts})
    return [values[a:b] for a, b in zip([0, *bounds], [*bounds, len(values)])]


def through_json(profile):  # type: ignore[no-untyped-def]
    return profile_from_json(json.loads(json.dumps(profile.to_json(), allow_nan=False)))


# --- PSI ----------------------------------------------------------------------------------------------------------


def test_psi_is_the_formula_with_half_a_count_per_bin() -> None:
    ref, cur = [50, 30, 20, 0], [40, 30, 20, 10]
    p = (np.array(ref) + 0.5) / (100 + 2)
    q = (np.array(cur) + 0.5) / (100 + 2)
    assert psi(ref, cur) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert psi(ref, ref) == 0.0
    assert psi(ref, cur) == pytest.approx(psi(cur, ref))  # symmetric
    assert math.isinf(psi(ref, cur, pseudocount=0))  # an empty reference bin without smoothing
    assert math.isnan(psi([0, 0], [1, 2]))
    with pytest.raises(ValueError, match="same bins"):
        psi([1, 2], [1, 2, 3])


def test_status_bands_are_data() -> None:
    bands = PsiThresholds()
    assert [bands.status(v) for v in (0.0, 0.099, 0.1, 0.249, 0.25, 3.0)] == [
        "stable", "stable", "watch", "watch", "act", "act",
    ]  # fmt: skip
    assert bands.status(float("nan")) == "unknown"
    assert PsiThresholds(watch=0.2, act=0.5).status(0.3) == "watch"
    with pytest.raises(ValueError, match="0 <= watch <= act"):
        PsiThresholds(watch=0.3, act=0.2)


def test_psi_numeric_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(1)
    ref = NumericProfile.of(rng.normal(50, 10, 100_000))
    same = psi_numeric(ref, NumericProfile.of(rng.normal(50, 10, 50_000)))
    assert len(same.ref_counts) == 10 and same.value < 0.01 and same.status() == "stable"
    # the reference's deciles, to within one histogram bin (each cut is the bin holding the j/10 quantile)
    assert all(abs(c - 10_000) <= ref.counts.max() for c in same.ref_counts)
    assert psi_numeric(ref, ref).value == 0.0
    shifted = psi_numeric(ref, NumericProfile.of(rng.normal(60, 10, 50_000)))  # one standard deviation
    assert shifted.value > 0.25 and shifted.status() == "act"
    assert psi_numeric(ref, NumericProfile.of(rng.normal(50.5, 10, 50_000))).status() == "stable"


def test_psi_numeric_bins_by_hand() -> None:
    # integers below 128 each have a bin of their own, so the deciles of 1..100 split them ten by ten
    ref = NumericProfile.of(np.arange(1, 101))
    cur = NumericProfile.of(np.arange(51, 151))
    result = psi_numeric(ref, cur)
    assert result.ref_counts == (10,) * 10
    assert result.cur_counts == (0, 0, 0, 0, 0, 10, 10, 10, 10, 60)
    assert result.edges[:2] == (10.0625, 20.125)  # where the bin after 10 (after 20) starts
    assert result.value == pytest.approx(psi(result.ref_counts, result.cur_counts))
    # a dominant value: tied cuts merge into fewer bins
    lumpy = psi_numeric(NumericProfile.of([0.0] * 80 + list(range(1, 21))), cur)
    assert len(lumpy.ref_counts) < 10 and lumpy.ref_counts[0] == 80


def test_zero_is_one_value_whatever_its_sign() -> None:
    zeros, negative_zeros = NumericProfile.of([0.0] * 10 + [1.0]), NumericProfile.of([-0.0] * 10 + [1.0])
    assert zeros == negative_zeros and psi_numeric(zeros, negative_zeros).value == 0.0


def test_psi_without_values_is_nan_with_a_reason() -> None:
    empty = NumericProfile.of([float("nan")] * 3)
    result = psi_numeric(NumericProfile.of([1.0, 2.0]), empty)
    assert math.isnan(result.value) and result.reason == "the current profile has no values"
    assert result.status() == "unknown"
    nothing = psi_categorical(CategoricalProfile.of([]), CategoricalProfile.of(["a"]))
    assert nothing.reason == "the reference has no values"


# --- numeric profiles ---------------------------------------------------------------------------------------------

any_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e6, 1e6),
    st.integers(-300, 300).map(float),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308]),
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(any_float, max_size=200), st.lists(st.integers(0, 200), max_size=6), st.randoms())
def test_numeric_merge_equals_one_pass_exactly(values: list[float], cuts: list[int], rnd: random.Random) -> None:
    whole = NumericProfile.of(np.array(values, dtype=np.float64))
    parts = [NumericProfile.of(np.array(part, dtype=np.float64)) for part in chunks(values, cuts)]
    rnd.shuffle(parts)  # workers finish in any order
    merged = merge_profiles(parts)
    assert merged == whole
    assert through_json(merged) == whole
    finite = [v for v in values if math.isfinite(v)]
    assert (whole.count, whole.missing, whole.invalid) == (
        len(finite), sum(math.isnan(v) for v in values), sum(math.isinf(v) for v in values),
    )  # fmt: skip
    assert whole.minimum == (min(finite) if finite else None) and whole.maximum == (max(finite) if finite else None)
    if finite and all(abs(v) < 1e300 for v in finite):
        assert whole.sum == math.fsum(finite)  # exactly, correctly rounded, whatever the chunking


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-1e12, 1e12), st.integers(-50, 50).map(float)), min_size=1, max_size=300),
    st.lists(st.floats(0, 1), max_size=5),
)
@pytest.mark.slow
def test_quantiles_are_within_the_stated_error(values: list[float], levels: list[float]) -> None:
    profile = NumericProfile.of(values)
    ordered = np.sort(values)
    n = len(values)
    exact_deciles = ordered[(np.arange(1, 10) * n + 9) // 10 - 1]  # inverted CDF: the ceil(j n / 10)-th value
    bound = ERROR * np.abs(exact_deciles) + 2.0**-1030
    assert np.all(np.abs(profile.deciles() - exact_deciles) <= bound)
    for q in levels:
        exact = ordered[max(math.ceil(q * n), 1) - 1]
        assert abs(profile.quantiles([q])[0] - exact) <= ERROR * abs(exact) + 2.0**-1030


def test_quantiles_match_numpy_on_a_large_sample() -> None:
    values = np.random.default_rng(2).lognormal(3, 1.5, 100_003)
    levels = np.arange(1, 10) / 10
    reference = np.quantile(values, levels, method="inverted_cdf")
    np.testing.assert_array_less(np.abs(NumericProfile.of(values).quantiles(levels) - reference), ERROR * reference)
    np.testing.assert_array_less(np.abs(NumericProfile.of(values).deciles() - reference), ERROR * reference)


def test_numeric_profile_counts_and_inputs() -> None:
    profile = NumericProfile.of([1.0, None, float("inf"), 3.0, float("nan")], missing=2, invalid=1)
    assert (profile.count, profile.missing, profile.invalid, profile.rows) == (2, 4, 2, 8)
    assert (profile.minimum, profile.maximum, profile.sum, profile.mean) == (1.0, 3.0, 4.0, 2.0)
    assert profile.missing_rate == 0.5
    # the exact sum: no cancellation, no overflow in the middle (the mean of two huge values is one of them)
    assert NumericProfile.of([1e308, 1.0, -1e308, 2.0**-1074]).sum == 1.0
    assert NumericProfile.of([1e308, 1e308]).mean == 1e308 and NumericProfile.of([1e308, 1e308]).sum == math.inf
    assert NumericProfile.of(pa.array([1.0, None, 3.0])) == NumericProfile.of([1.0, None, 3.0])
    assert NumericProfile.of(pa.chunked_array([[1, 2], [None, 3]])) == NumericProfile.of([1, 2, None, 3])
    empty = NumericProfile.of([])
    assert (empty.count, empty.minimum, empty.mean) == (0, None, None) and np.isnan(empty.deciles()).all()
    lo, hi, counts = NumericProfile.of([1.0, 1.001, 100.0]).bins()
    assert counts.tolist() == [2, 1] and lo[0] <= 1.0 and hi[0] >= 1.001 and lo[1] <= 100.0 <= hi[1]
    with pytest.raises(ValueError, match="mantissa bits"):
        NumericProfile.of([1.0]).merge(NumericProfile.of([1.0], mantissa_bits=5))


def test_numeric_profile_json_is_small() -> None:
    rng = np.random.default_rng(3)
    profile = merge_profiles(NumericProfile.of(rng.normal(40, 12, 10_000)) for _ in range(10))
    text = json.dumps(profile.to_json())
    assert len(text) < 6_000 and profile.count == 100_000
    with pytest.raises(ValueError, match="not a numeric profile"):
        NumericProfile.from_json({"type": "numeric", "count": 1})


# --- categorical profiles -----------------------------------------------------------------------------------------

labels = st.one_of(st.none(), st.sampled_from(["Google", "Direct", "Olark Chat", "Référence", "", "google"]))


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(labels, max_size=200), st.lists(st.integers(0, 200), max_size=6), st.randoms())
def test_categorical_merge_equals_one_pass_within_the_limit(
    values: list[str | None], cuts: list[int], rnd: random.Random
) -> None:
    whole = CategoricalProfile.of(values)
    parts = [CategoricalProfile.of(part) for part in chunks(values, cuts)]
    rnd.shuffle(parts)
    merged = merge_profiles(parts)
    assert merged == whole and through_json(merged) == whole
    assert whole.counts == {v: values.count(v) for v in set(values) - {None}}
    assert whole.missing == values.count(None) and not whole.truncated
    assert CategoricalProfile.of(pa.array(values, type=pa.string())) == whole


def test_categorical_truncation_keeps_the_most_frequent() -> None:
    # limit 2: the third most frequent value has count 2, so only values seen more than twice are kept; b and c
    # tie at the boundary and are both folded
    values = ["a"] * 3 + ["c"] * 2 + ["b"] * 2 + ["d"]
    profile = CategoricalProfile.of(values, limit=2)
    assert profile.counts == {"a": 3} and profile.other == 5 and profile.truncated and profile.count == 8
    assert CategoricalProfile.of(pa.array(values), limit=2) == profile
    twice = profile.merge(profile)  # truncated sides: kept counts are lower bounds, the totals stay exact
    assert twice.counts == {"a": 6} and twice.other == 10 and twice.count == 16
    assert CategoricalProfile.of(values, limit=3).counts == {"a": 3, "b": 2, "c": 2}
    assert CategoricalProfile.of(values, limit=3).top() == [("a", 3), ("b", 2), ("c", 2)]
    # two untruncated halves: the merge equals one pass even though the merge itself has to fold
    first, second = (
        CategoricalProfile.of(["a", "a", "a", "c"], limit=2),
        CategoricalProfile.of(["b", "c", "b"], limit=2),
    )
    assert first.merge(second) == CategoricalProfile.of(["a", "a", "a", "c", "b", "c", "b"], limit=2)
    assert first.merge(second).counts == {"a": 3}
    assert CATEGORY_LIMIT == 1000 and not CategoricalProfile.of([str(i) for i in range(1000)]).truncated
    with pytest.raises(TypeError, match="counts text values, got int 3"):
        CategoricalProfile.of(["a", 3])
    with pytest.raises(TypeError, match="counts text values, got an Arrow column of int64"):
        CategoricalProfile.of(pa.array([1, 2]))


def test_psi_categorical_by_value() -> None:
    ref = CategoricalProfile.of(["Google"] * 60 + ["Direct"] * 40)
    assert psi_categorical(ref, ref).value == 0.0
    cur = CategoricalProfile.of(["Google"] * 30 + ["Direct"] * 40 + ["Chat"] * 30)
    result = psi_categorical(ref, cur)
    assert result.categories == ("Chat", "Direct", "Google")
    assert (result.ref_counts, result.cur_counts) == ((0, 40, 60), (30, 40, 30))
    assert result.value == pytest.approx(psi([0, 40, 60], [30, 40, 30])) and result.status() == "act"


def test_psi_categorical_with_a_truncated_side() -> None:
    # the current side folded "c" and "d" into other: their counts there are unknown, so "c" is compared inside
    # 'other' (None), not as a category of its own
    ref = CategoricalProfile.of(["a"] * 5 + ["b"] * 4 + ["c"] * 3)
    cur = CategoricalProfile.of(["a"] * 5 + ["b"] * 4 + ["c"] * 2 + ["d"], limit=2)
    assert cur.counts == {"a": 5, "b": 4} and cur.other == 3
    result = psi_categorical(ref, cur)
    assert result.categories == ("a", "b", None)
    assert (result.ref_counts, result.cur_counts) == ((5, 4, 3), (5, 4, 3))
    assert result.value == 0.0


def test_profiles_from_json_by_type() -> None:
    assert profile_from_json(CategoricalProfile.of(["x"]).to_json()) == CategoricalProfile.of(["x"])
    with pytest.raises(ValueError, match="unknown profile type 'histogram'"):
        profile_from_json({"type": "histogram"})
    with pytest.raises(TypeError, match="cannot merge a numeric profile with CategoricalProfile"):
        NumericProfile.of([1.0]).merge(CategoricalProfile.of(["x"]))  # type: ignore[arg-type]
