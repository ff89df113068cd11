"""scikit-learn estimators as mlsm models: a fitted estimator or ``Pipeline`` scored through the estimator itself for
large chunks and through a compiled form (``_compile.py``: numpy only, no pandas, no per-call validation, the same
scores within 1e-9) for a single record or a small group."""

from __future__ import annotations

__all__: list[str] = []
