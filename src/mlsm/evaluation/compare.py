"""Comparing two models on live data: the current results of ``A@VER`` and ``B@VER`` for the ids both have.

This is how a team judges a draft challenger against the active model before promoting it: how far apart the
scores are, whether they rank leads alike (Pearson, Spearman), and whether they agree on the top decile (the leads
sales would call first).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from mlsm.stores.base import Store, split_model

__all__ = ["Comparison", "compare_models"]


@dataclass
class Comparison:
    """Statistics over the ids whose current results of both models hold a number under ``key``."""

    a: str
    b: str
    key: str
    both: int  # ids with a usable value from both models
    only_a: int  # ids with a current result of A but none usable from B
    only_b: int
    unusable_a: int  # ids whose current A result is an error or lacks a number under key
    unusable_b: int
    mean_abs_diff: float | None
    pearson: float | None
    spearman: float | None
    top_decile_agreement: float | None  # share of A's top 10% that is also in B's top 10%
    top_decile_size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The comparison as a small table for the terminal."""

        def show(value: float | None, percent: bool = False) -> str:
            if value is None:
                return "n/a"
            return f"{value:.1%}" if percent else f"{value:.4f}"

        rows = [
            ("ids with a value from both", f"{self.both:,}"),
            ("only A / only B", f"{self.only_a:,} / {self.only_b:,}"),
            (f"no usable {self.key!r} (A / B)", f"{self.unusable_a:,} / {self.unusable_b:,}"),
            ("mean |A - B|", show(self.mean_abs_diff)),
            ("Pearson r", show(self.pearson)),
            ("Spearman rho", show(self.spearman)),
            (f"top-decile agreement (top {self.top_decile_size:,})", show(self.top_decile_agreement, percent=True)),
        ]
        width = max(len(label) for label, _ in rows)
        head = f"A = {self.a}, B = {self.b}, key {self.key!r}"
        return "\n".join([head, *(f"  {label.ljust(width)}  {value}" for label, value in rows)])


def _values(store: Store, model: str, key: str) -> Iterator[tuple[Any, float | None]]:
    """(id, value or None when unusable) for each id's current result of ``model``, in id order."""
    name, version = split_model(model)
    id_field = store.id_field or "id"
    for document in store.current_documents(model=model):
        versions = document["results"].get(name, {})
        slot: dict[str, Any] = next((s for v, s in versions.items() if str(v) == version), {})
        value = slot.get(key) if "_error" not in slot else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            yield document[id_field], float(value)
        else:
            yield document[id_field], None


def compare_models(store: Store, a: str, b: str, *, key: str = "score") -> Comparison:
    """Compare the current results of models ``a`` and ``b`` (``NAME@VERSION``) over the ids both have."""
    import numpy as np
    import pandas as pd

    left, right = _values(store, a, key), _values(store, b, key)
    xs: list[float] = []
    ys: list[float] = []
    counts = {"only_a": 0, "only_b": 0, "unusable_a": 0, "unusable_b": 0}
    item_a, item_b = next(left, None), next(right, None)
    while item_a is not None or item_b is not None:
        if item_b is None or (item_a is not None and str(item_a[0]) < str(item_b[0])):
            counts["only_a"] += 1
            counts["unusable_a"] += item_a[1] is None  # type: ignore[index]
            item_a = next(left, None)
        elif item_a is None or str(item_b[0]) < str(item_a[0]):
            counts["only_b"] += 1
            counts["unusable_b"] += item_b[1] is None
            item_b = next(right, None)
        else:
            value_a, value_b = item_a[1], item_b[1]
            counts["unusable_a"] += value_a is None
            counts["unusable_b"] += value_b is None
            if value_a is not None and value_b is not None:
                xs.append(value_a)
                ys.append(value_b)
            item_a, item_b = next(left, None), next(right, None)
    n = len(xs)
    x, y = np.asarray(xs), np.asarray(ys)
    mean_abs = float(np.mean(np.abs(x - y))) if n else None
    pearson = _correlation(x, y)
    spearman = _correlation(pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()) if n else None
    size = math.ceil(n / 10) if n else 0
    agreement = None
    if size:
        top_a = set(np.argsort(-x, kind="stable")[:size].tolist())
        top_b = set(np.argsort(-y, kind="stable")[:size].tolist())
        agreement = len(top_a & top_b) / size
    return Comparison(a, b, key, n, **counts, mean_abs_diff=mean_abs, pearson=pearson, spearman=spearman,
                      top_decile_agreement=agreement, top_decile_size=size)  # fmt: skip


def _correlation(x: Any, y: Any) -> float | None:
    import numpy as np

    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None  # undefined for fewer than two points or a constant score
    return float(np.corrcoef(x, y)[0, 1])
