"""Drift: profiles of a column (numbers or categories) that are computed per chunk and merged exactly, and the
population stability index (PSI) between a reference profile and a current one.

A numeric profile is a fixed histogram over the float64 bit pattern: a value's bin is its sign, its binary exponent
and the top ``MANTISSA_BITS`` bits of its mantissa, so every bin spans at most 2**-MANTISSA_BITS of its values'
magnitude (128 bins per factor of two), the same grid for every profile. Bins are counted exactly, so merging two
profiles adds counts and equals profiling the concatenated values, whatever the chunking or the order; the exact sum
is kept as an integer multiple of 2**-1074 for the same reason. Quantiles read from it are within 2**-(MANTISSA_BITS
+ 1) of the true sample quantile, relatively (0.39%).

A categorical profile counts every distinct value exactly up to ``CATEGORY_LIMIT`` distinct values; beyond that it
keeps only the values seen more often than the (limit + 1)-th most frequent (at most ``limit``; values tied at the
boundary are all folded, so the rule needs no order among values) and folds the rest into ``other``, marked
``truncated``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from itertools import compress
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "CATEGORY_LIMIT",
    "DEFAULT_THRESHOLDS",
    "MANTISSA_BITS",
    "PSEUDOCOUNT",
    "CategoricalProfile",
    "NumericProfile",
    "PsiResult",
    "PsiThresholds",
    "merge_profiles",
    "profile_from_json",
    "psi",
    "psi_categorical",
    "psi_numeric",
]

MANTISSA_BITS = 7
CATEGORY_LIMIT = 1000
# Half a count per bin (additive smoothing): a bin empty on one side gives a large but finite term, and with the
# thousands of rows of a real run it moves the shares by well under 0.1%.
PSEUDOCOUNT = 0.5

Ints = npt.NDArray[np.int64]

_SIGN = np.uint64(1 << 63)
_HIGH_BITS = ~np.uint64((1 << 27) - 1)  # sign, exponent and the top 25 stored mantissa bits
_SCALE = 1074  # the exact sum counts units of 2**-1074, the smallest subnormal
_HUGE_EXPONENT = 1900  # biased: values from 2**877 on
_SLICE = 1 << 24  # rows per exact-sum pass: below 2**26, every float64 sum in it is exact


# --- PSI ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PsiThresholds:
    """PSI bands: stable below ``watch``, watch below ``act``, act from ``act`` on (the usual 0.1 and 0.25)."""

    watch: float = 0.1
    act: float = 0.25

    def __post_init__(self) -> None:
        if not 0 <= self.watch <= self.act:
            raise ValueError(f"PSI thresholds must satisfy 0 <= watch <= act, got watch={self.watch}, act={self.act}")

    def status(self, value: float) -> str:
        """'stable', 'watch' or 'act' for a PSI value; 'unknown' for NaN (nothing to compare)."""
        if math.isnan(value):
            return "unknown"
        if value < self.watch:
            return "stable"
        return "watch" if value < self.act else "act"


DEFAULT_THRESHOLDS = PsiThresholds()


def psi(
    ref_counts: Sequence[float] | npt.NDArray[Any],
    cur_counts: Sequence[float] | npt.NDArray[Any],
    pseudocount: float = PSEUDOCOUNT,
) -> float:
    """The population stability index sum((cur - ref) * ln(cur / ref)) over shares of matching bins, each bin's count
    raised by ``pseudocount`` first; NaN when either side has no count at all."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise ValueError(f"PSI needs two count vectors over the same bins, got shapes {ref.shape} and {cur.shape}")
    if (ref < 0).any() or (cur < 0).any():
        raise ValueError("PSI counts must not be negative")
    if pseudocount < 0:
        raise ValueError(f"pseudocount must not be negative, got {pseudocount!r}")
    if ref.sum() == 0 or cur.sum() == 0:
        return float("nan")
    p = (ref + pseudocount) / (ref.sum() + pseudocount * ref.size)
    q = (cur + pseudocount) / (cur.sum() + pseudocount * cur.size)
    both = (p > 0) & (q > 0)  # without a pseudocount, a bin empty on both sides adds nothing
    if (both != ((p > 0) | (q > 0))).any():
        return float("inf")
    return float(np.sum((q[both] - p[both]) * np.log(q[both] / p[both])))


@dataclass(frozen=True)
class PsiResult:
    """A PSI and the bins it was computed over, with the counts on each side and why the value is NaN when it is.

    Numeric: bin i holds the values below ``edges[i]`` (and at or above ``edges[i - 1]``), the last bin the rest.
    Categorical: one bin per value in ``categories``; None, last when present, stands for every other value.
    """

    value: float
    ref_counts: tuple[int, ...]
    cur_counts: tuple[int, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str | None, ...] = ()
    reason: str | None = None

    def status(self, thresholds: PsiThresholds = DEFAULT_THRESHOLDS) -> str:
        """The value's band under ``thresholds``."""
        return thresholds.status(self.value)


def _no_values(ref_count: int, cur_count: int) -> str | None:
    if ref_count == 0:
        return "the reference has no values"
    if cur_count == 0:
        return "the current profile has no values"
    return None


# --- numeric profile ----------------------------------------------------------------------------------------------


def _as_floats(values: Any) -> npt.NDArray[np.float64]:
    if hasattr(values, "to_numpy") and hasattr(values, "null_count"):  # a pyarrow Array or ChunkedArray
        values = values.to_numpy(zero_copy_only=False)  # nulls become NaN
    arr = np.asarray(values, dtype=np.float64)  # None in a list becomes NaN too
    if arr.ndim != 1:
        raise ValueError(f"a profile reads one column: a one-dimensional array, got shape {arr.shape}")
    return arr


def _bin_keys(bits: npt.NDArray[np.uint64], mantissa_bits: int) -> Ints:
    """Each value's bin, ordered like the values: the bit pattern turned monotone (negative numbers: every bit
    flipped; others: the sign bit set), then its top 12 + mantissa_bits bits."""
    negative = (bits.view(np.int64) >> 63).view(np.uint64)  # all ones for negative numbers, zero otherwise
    ordered = bits ^ (negative | _SIGN)
    return (ordered >> np.uint64(52 - mantissa_bits)).astype(np.int64)


def _key_bounds(keys: Ints, mantissa_bits: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The smallest and largest float64 in each bin."""
    shift = np.uint64(52 - mantissa_bits)
    lo = keys.astype(np.uint64) << shift
    hi = lo | ((np.uint64(1) << shift) - np.uint64(1))

    def to_float(ordered: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
        positive = (ordered & _SIGN) != 0
        return np.where(positive, ordered ^ _SIGN, ~ordered).view(np.float64)

    return to_float(lo), to_float(hi)


def _count_keys(keys: Ints, mantissa_bits: int) -> tuple[Ints, Ints]:
    """The distinct keys in order and how often each occurs, by counting rather than sorting: the few occupied
    exponents are numbered densely, so the keys map into a small range that ``bincount`` can count."""
    if keys.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    width = 1 << mantissa_bits
    exponent = keys >> mantissa_bits  # sign and exponent: below 2**12
    occupied = np.flatnonzero(np.bincount(exponent))
    dense = np.zeros(occupied[-1] + 1, np.int64)
    dense[occupied] = np.arange(occupied.size)
    counts = np.bincount((dense[exponent] << mantissa_bits) | (keys & (width - 1)), minlength=occupied.size * width)
    present = np.flatnonzero(counts)
    found = (occupied[present >> mantissa_bits] << mantissa_bits) | (present & (width - 1))
    return found.astype(np.int64), counts[present].astype(np.int64)


def _exact_sum(values: npt.NDArray[np.float64], bits: npt.NDArray[np.uint64], *, huge: bool) -> int:
    """The exact sum of finite float64 values as an integer count of 2**-1074.

    Each value splits exactly into its top 26 significant bits and the rest; within one binary exponent, the first
    parts are multiples of one quantum and so are the second parts, small enough that float64 sums of up to 2**26 of
    them are exact. So per exponent two float sums are exact, and they are added as integers. With ``huge`` values
    (from 2**877 on) those are scaled down by 2**-128 first, exactly, so that their sums cannot overflow.
    """
    total = 0
    for start in range(0, values.size, _SLICE):
        part, part_bits = values[start : start + _SLICE], bits[start : start + _SLICE]
        high = (part_bits & _HIGH_BITS).view(np.float64)
        low = part - high
        exponent = (part_bits.view(np.int64) >> 52) & 0x7FF
        if huge:
            scale = np.where(exponent >= _HUGE_EXPONENT, 2.0**-128, 1.0)
            high, low = high * scale, low * scale
        high_sums = np.bincount(exponent, weights=high, minlength=2047)
        low_sums = np.bincount(exponent, weights=low, minlength=2047)
        for e in np.flatnonzero((high_sums != 0) | (low_sums != 0)).tolist():
            units = _units(float(high_sums[e])) + _units(float(low_sums[e]))
            total += units << 128 if huge and e >= _HUGE_EXPONENT else units
    return total


def _units(value: float) -> int:
    numerator, denominator = value.as_integer_ratio()  # the denominator is a power of two, at most 2**1074
    return numerator * ((1 << _SCALE) // denominator)


def _add_bins(keys: Ints, counts: Ints, more_keys: Ints, more_counts: Ints) -> tuple[Ints, Ints]:
    """Two sorted bin lists added together, without sorting: the new keys are inserted where they belong."""
    where = np.searchsorted(keys, more_keys)
    known = where < keys.size
    known[known] = keys[where[known]] == more_keys[known]
    new = more_keys[~known]
    slots = np.searchsorted(keys, new)
    merged_keys = np.insert(keys, slots, new)
    merged_counts = np.insert(counts, slots, 0)
    merged_counts[np.searchsorted(merged_keys, more_keys)] += more_counts  # distinct keys: no collisions
    return merged_keys, merged_counts


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """A numeric column's profile: finite values counted per fixed bin (``keys``, ``counts``), their exact sum
    (``exact_sum`` units of 2**-1074), min and max; ``missing`` (NaN or null) and ``invalid`` (infinite, or reported
    by the caller) rows are only counted."""

    count: int = 0
    missing: int = 0
    invalid: int = 0
    minimum: float | None = None
    maximum: float | None = None
    exact_sum: int = field(default=0, repr=False)
    keys: Ints = field(default_factory=lambda: np.empty(0, np.int64))
    counts: Ints = field(default_factory=lambda: np.empty(0, np.int64))
    mantissa_bits: int = MANTISSA_BITS

    @classmethod
    def of(
        cls, values: Any, *, missing: int = 0, invalid: int = 0, mantissa_bits: int = MANTISSA_BITS
    ) -> NumericProfile:
        """Profile one chunk of a column (numpy array, list with None, or pyarrow array). ``missing`` and
        ``invalid`` add rows the caller has already set aside (e.g. values that failed the field's rules)."""
        if not 1 <= mantissa_bits <= 12:
            raise ValueError(f"mantissa_bits must be between 1 and 12, got {mantissa_bits!r}")
        arr = _as_floats(values)
        finite = np.isfinite(arr)
        if finite.all():
            kept = arr + 0.0  # a contiguous copy, and -0.0 becomes 0.0 (one bin for zero)
        else:
            nan = int(np.count_nonzero(np.isnan(arr)))
            missing += nan
            invalid += int(arr.size - np.count_nonzero(finite)) - nan
            kept = arr[finite] + 0.0
        bits = kept.view(np.uint64)
        keys, counts = _count_keys(_bin_keys(bits, mantissa_bits), mantissa_bits)
        lowest, highest = (float(kept.min()), float(kept.max())) if kept.size else (0.0, 0.0)
        return cls(
            count=int(kept.size),
            missing=missing,
            invalid=invalid,
            minimum=lowest if kept.size else None,
            maximum=highest if kept.size else None,
            exact_sum=_exact_sum(kept, bits, huge=bool(kept.size) and max(-lowest, highest) >= 2.0**877),
            keys=keys,
            counts=counts,
            mantissa_bits=mantissa_bits,
        )

    def merge(self, other: NumericProfile) -> NumericProfile:
        """The profile of both profiles' rows together: equal to profiling them in one pass."""
        if not isinstance(other, NumericProfile):
            raise TypeError(f"cannot merge a numeric profile with {type(other).__name__}")
        if other.mantissa_bits != self.mantissa_bits:
            raise ValueError(
                f"cannot merge profiles with {self.mantissa_bits} and {other.mantissa_bits} mantissa bits per bin"
            )
        keys, counts = _add_bins(self.keys, self.counts, other.keys, other.counts)
        lows = [v for v in (self.minimum, other.minimum) if v is not None]
        highs = [v for v in (self.maximum, other.maximum) if v is not None]
        return NumericProfile(
            count=self.count + other.count,
            missing=self.missing + other.missing,
            invalid=self.invalid + other.invalid,
            minimum=min(lows) if lows else None,
            maximum=max(highs) if highs else None,
            exact_sum=self.exact_sum + other.exact_sum,
            keys=keys.astype(np.int64),
            counts=counts,
            mantissa_bits=self.mantissa_bits,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumericProfile):
            return NotImplemented
        return (
            self._scalars() == other._scalars()
            and np.array_equal(self.keys, other.keys)
            and np.array_equal(self.counts, other.counts)
        )

    def _scalars(self) -> tuple[Any, ...]:
        return (self.count, self.missing, self.invalid, self.minimum, self.maximum, self.exact_sum, self.mantissa_bits)

    __hash__ = None  # type: ignore[assignment]

    @property
    def rows(self) -> int:
        """Every row seen: values, missing and invalid."""
        return self.count + self.missing + self.invalid

    @property
    def missing_rate(self) -> float:
        """The share of rows that were missing (NaN when no rows)."""
        return self.missing / self.rows if self.rows else float("nan")

    @property
    def sum(self) -> float:
        """The sum of the values, correctly rounded to a float (inf when it overflows)."""
        try:
            return self.exact_sum / (1 << _SCALE)
        except OverflowError:
            return math.inf if self.exact_sum > 0 else -math.inf

    @property
    def mean(self) -> float | None:
        """The mean of the values (None without values), from the exact sum."""
        if not self.count:
            return None
        try:
            return self.exact_sum / (self.count << _SCALE)
        except OverflowError:
            return math.inf if self.exact_sum > 0 else -math.inf

    def bins(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], Ints]:
        """The occupied bins, in value order: smallest and largest float each can hold, and the count in each."""
        lo, hi = _key_bounds(self.keys, self.mantissa_bits)
        return lo, hi, self.counts.copy()

    def _rank_bins(self, ranks: Ints) -> npt.NDArray[np.intp]:
        """Index of the bin holding the value of each 1-based rank (in ascending order)."""
        return np.searchsorted(np.cumsum(self.counts), ranks, side="left")

    def quantiles(self, levels: Sequence[float] | npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Estimates of the sample quantiles at ``levels`` (inverted CDF: the smallest value with at least a share q
        of values at or below it): the middle of its bin, within [min, max], so within 2**-(mantissa_bits + 1) of
        it relatively (below 2**-1022, the subnormals, within 2**-1030 absolutely). NaN without values."""
        q = np.asarray(levels, dtype=np.float64)
        if ((q < 0) | (q > 1) | np.isnan(q)).any():
            raise ValueError(f"quantile levels must lie in [0, 1], got {q.tolist()}")
        if not self.count:
            return np.full(q.shape, np.nan)
        ranks = np.maximum(np.ceil(q * self.count), 1).astype(np.int64)
        return self._values_at(ranks)

    def deciles(self) -> npt.NDArray[np.float64]:
        """Estimates of the 10%, 20%, ..., 90% quantiles (ranks computed in integers: exactly ceil(j n / 10))."""
        if not self.count:
            return np.full(9, np.nan)
        return self._values_at(self._decile_ranks())

    def _decile_ranks(self) -> Ints:
        return np.maximum((np.arange(1, 10, dtype=np.int64) * self.count + 9) // 10, 1)

    def _values_at(self, ranks: Ints) -> npt.NDArray[np.float64]:
        lo, hi = _key_bounds(self.keys[self._rank_bins(ranks)], self.mantissa_bits)
        middle = lo / 2 + hi / 2  # halves first: no overflow at the largest floats
        return np.clip(middle, self.minimum, self.maximum)

    def to_json(self) -> dict[str, Any]:
        """A small JSON-safe dict (bins as first key then gaps, so mostly 1s); ``profile_from_json`` reads it."""
        exact = self.exact_sum
        shift = (abs(exact) & -abs(exact)).bit_length() - 1 if exact else 0
        return {
            "type": "numeric",
            "mantissa_bits": self.mantissa_bits,
            "count": self.count,
            "missing": self.missing,
            "invalid": self.invalid,
            "min": self.minimum,
            "max": self.maximum,
            "sum": self.sum if self.count and math.isfinite(self.sum) else None,  # for people; sum_exact is exact
            "sum_exact": [hex(exact >> shift), shift - _SCALE],
            "keys": np.diff(self.keys, prepend=0).tolist(),
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NumericProfile:
        """The profile ``to_json`` wrote."""
        try:
            mantissa, exponent = data["sum_exact"]
            keys = np.cumsum(np.asarray(data["keys"], dtype=np.int64))
            counts = np.asarray(data["counts"], dtype=np.int64)
            profile = cls(
                count=int(data["count"]),
                missing=int(data["missing"]),
                invalid=int(data["invalid"]),
                minimum=None if data["min"] is None else float(data["min"]),
                maximum=None if data["max"] is None else float(data["max"]),
                exact_sum=int(mantissa, 16) << (int(exponent) + _SCALE),
                keys=keys,
                counts=counts,
                mantissa_bits=int(data["mantissa_bits"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a numeric profile written by NumericProfile.to_json: {exc!r}") from exc
        if keys.shape != counts.shape or int(counts.sum()) != profile.count:
            raise ValueError("not a numeric profile written by NumericProfile.to_json: bins and count disagree")
        return profile


def psi_numeric(ref: NumericProfile, cur: NumericProfile, pseudocount: float = PSEUDOCOUNT) -> PsiResult:
    """PSI over the reference's deciles: each histogram bin goes wholly to the decile whose cut it holds or lies
    below (so both sides are split by the same bins, exactly; each holds a tenth of the reference to within one
    histogram bin's count); tied cuts merge, so a column with a dominant value has fewer than 10 bins."""
    if ref.mantissa_bits != cur.mantissa_bits:
        raise ValueError(f"profiles with {ref.mantissa_bits} and {cur.mantissa_bits} mantissa bits cannot be compared")
    reason = _no_values(ref.count, cur.count)
    if reason is not None:
        return PsiResult(float("nan"), (), (), reason=reason)
    cuts = np.unique(ref.keys[ref._rank_bins(ref._decile_ranks())])
    groups = cuts.size + 1
    ref_counts = np.bincount(np.searchsorted(cuts, ref.keys, side="left"), weights=ref.counts, minlength=groups)
    cur_counts = np.bincount(np.searchsorted(cuts, cur.keys, side="left"), weights=cur.counts, minlength=groups)
    edges, _ = _key_bounds(cuts + 1, ref.mantissa_bits)  # where the next bin starts: round numbers
    return PsiResult(
        value=psi(ref_counts, cur_counts, pseudocount),
        ref_counts=tuple(int(c) for c in ref_counts),
        cur_counts=tuple(int(c) for c in cur_counts),
        edges=tuple(float(e) for e in edges),
    )


# --- categorical profile ------------------------------------------------------------------------------------------


def _kept(counts: Ints, limit: int) -> npt.NDArray[np.bool_] | None:
    """Which values to keep when there are more than ``limit``: those seen more often than the (limit + 1)-th most
    frequent, so at most ``limit``, values tied at the boundary all folded (no order among values needed)."""
    if counts.size <= limit:
        return None
    threshold = np.partition(counts, counts.size - limit - 1)[counts.size - limit - 1]
    return counts > threshold


def _fold(counts: Mapping[str, int], limit: int) -> tuple[dict[str, int], int]:
    """The values kept (see ``_kept``) with their counts, and the count folded into other."""
    tally = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    keep = _kept(tally, limit)
    if keep is None:
        return dict(counts), 0
    return dict(compress(counts.items(), keep.tolist())), int(tally[~keep].sum())


@dataclass(frozen=True)
class CategoricalProfile:
    """A text column's profile: exact counts per value (``counts``), ``other`` rows folded in past ``limit``
    distinct values (``truncated``), and the ``missing`` and ``invalid`` rows.

    Exact after merge: while neither side is truncated, a merge equals profiling all rows at once, even when the
    merged result has to truncate. Once a side is truncated its folded values are gone; merges stay deterministic,
    the kept counts are lower bounds, and ``count``, ``missing``, ``invalid`` and ``other + sum(counts)`` stay exact.
    """

    count: int = 0
    missing: int = 0
    invalid: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    other: int = 0
    truncated: bool = False
    limit: int = CATEGORY_LIMIT

    @classmethod
    def of(cls, values: Any, *, missing: int = 0, invalid: int = 0, limit: int = CATEGORY_LIMIT) -> CategoricalProfile:
        """Profile one chunk of a text column (an iterable of str with None for missing, or a pyarrow array)."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        if hasattr(values, "null_count") and hasattr(values, "type"):  # a pyarrow Array or ChunkedArray
            return cls._of_arrow(values, missing=missing, invalid=invalid, limit=limit)
        found = Counter(values)
        missing += found.pop(None, 0)
        bad = next((v for v in found if not isinstance(v, str)), None)
        if bad is not None:
            raise TypeError(f"a categorical profile counts text values, got {type(bad).__name__} {bad!r}")
        kept, folded = _fold(found, limit)
        return cls(int(sum(found.values())), missing, invalid, kept, folded, folded > 0, limit)

    @classmethod
    def _of_arrow(cls, values: Any, *, missing: int, invalid: int, limit: int) -> CategoricalProfile:
        import pyarrow as pa
        import pyarrow.compute as pc

        tally = pc.value_counts(values.drop_null())
        names, counts = tally.field("values"), tally.field("counts").to_numpy().astype(np.int64)
        kind = names.type.value_type if pa.types.is_dictionary(names.type) else names.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise TypeError(f"a categorical profile counts text values, got an Arrow column of {kind}")
        keep = _kept(counts, limit)
        if keep is not None:  # only the kept values become Python strings
            names = names.filter(pa.array(keep))
        kept = dict(zip(names.to_pylist(), (counts if keep is None else counts[keep]).tolist()))
        folded = 0 if keep is None else int(counts[~keep].sum())
        total = int(counts.sum())
        return cls(total, missing + int(values.null_count), invalid, kept, folded, folded > 0, limit)

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        """The profile of both profiles' rows together (see the class docstring for when it is exact)."""
        if not isinstance(other, CategoricalProfile):
            raise TypeError(f"cannot merge a categorical profile with {type(other).__name__}")
        if other.limit != self.limit:
            raise ValueError(f"cannot merge categorical profiles with limits {self.limit} and {other.limit}")
        summed = Counter(self.counts)
        summed.update(other.counts)
        kept, folded = _fold(summed, self.limit)
        return CategoricalProfile(
            count=self.count + other.count,
            missing=self.missing + other.missing,
            invalid=self.invalid + other.invalid,
            counts=kept,
            other=self.other + other.other + folded,
            truncated=self.truncated or other.truncated or folded > 0,
            limit=self.limit,
        )

    @property
    def rows(self) -> int:
        """Every row seen: values, missing and invalid."""
        return self.count + self.missing + self.invalid

    @property
    def missing_rate(self) -> float:
        """The share of rows that were missing (NaN when no rows)."""
        return self.missing / self.rows if self.rows else float("nan")

    def top(self, k: int | None = None) -> list[tuple[str, int]]:
        """The kept values from the most frequent (ties: the smaller value), at most ``k``."""
        return sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:k]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict, values from the most frequent; ``profile_from_json`` reads it."""
        ranked = self.top()
        return {
            "type": "categorical",
            "limit": self.limit,
            "count": self.count,
            "missing": self.missing,
            "invalid": self.invalid,
            "other": self.other,
            "truncated": self.truncated,
            "values": [v for v, _ in ranked],
            "counts": [c for _, c in ranked],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        """The profile ``to_json`` wrote."""
        try:
            values, counts = list(data["values"]), [int(c) for c in data["counts"]]
            profile = cls(
                count=int(data["count"]),
                missing=int(data["missing"]),
                invalid=int(data["invalid"]),
                counts=dict(zip(values, counts, strict=True)),
                other=int(data["other"]),
                truncated=bool(data["truncated"]),
                limit=int(data["limit"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a categorical profile written by CategoricalProfile.to_json: {exc!r}") from exc
        if sum(counts) + profile.other != profile.count or len(profile.counts) != len(values):
            raise ValueError("not a categorical profile written by CategoricalProfile.to_json: counts disagree")
        return profile


def psi_categorical(ref: CategoricalProfile, cur: CategoricalProfile, pseudocount: float = PSEUDOCOUNT) -> PsiResult:
    """PSI over categories by value: every value either profile kept gets its own bin when both sides know its count
    (a side that is not truncated knows that an absent value has 0); the rest, and each side's ``other``, share one
    bin, last, labelled None."""
    reason = _no_values(ref.count, cur.count)
    if reason is not None:
        return PsiResult(float("nan"), (), (), reason=reason)
    categories: list[str | None] = []
    ref_counts: list[int] = []
    cur_counts: list[int] = []
    ref_other, cur_other = ref.other, cur.other
    for value in sorted(set(ref.counts) | set(cur.counts)):
        r, c = ref.counts.get(value), cur.counts.get(value)
        if (r is not None or not ref.truncated) and (c is not None or not cur.truncated):
            categories.append(value)
            ref_counts.append(r or 0)
            cur_counts.append(c or 0)
        else:
            ref_other += r or 0
            cur_other += c or 0
    if ref_other or cur_other:
        categories.append(None)
        ref_counts.append(ref_other)
        cur_counts.append(cur_other)
    return PsiResult(
        value=psi(ref_counts, cur_counts, pseudocount),
        ref_counts=tuple(ref_counts),
        cur_counts=tuple(cur_counts),
        categories=tuple(categories),
    )


# --- either kind --------------------------------------------------------------------------------------------------

Profile = NumericProfile | CategoricalProfile


def merge_profiles(profiles: Iterable[Profile]) -> Profile:
    """Merge profiles of one kind (chunks, workers, a resumed run's parts) into one."""
    items = list(profiles)
    if not items:
        raise ValueError("merge_profiles needs at least one profile")
    return reduce(lambda a, b: a.merge(b), items)  # type: ignore[arg-type]


def profile_from_json(data: Mapping[str, Any]) -> Profile:
    """Read a profile written by either kind's ``to_json``, by its ``type``."""
    kind = data.get("type") if isinstance(data, Mapping) else None
    if kind == "numeric":
        return NumericProfile.from_json(data)
    if kind == "categorical":
        return CategoricalProfile.from_json(data)
    raise ValueError(f"unknown profile type {kind!r}: expected 'numeric' or 'categorical'")
