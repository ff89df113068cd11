"""scikit-learn estimators as mlsm models: a fitted estimator or ``Pipeline`` scored through the estimator itself for
large chunks and through a compiled form (``_compile.py``: numpy only, no pandas, no per-call validation, the same
scores within 1e-9) for a single record or a small group (``Model.from_estimator``)."""

from __future__ import annotations

from mlsm.estimators._model import SMALL_GROUP, EstimatorNotCompiled, EstimatorScorer, load_artifact

__all__ = ["SMALL_GROUP", "EstimatorNotCompiled", "EstimatorScorer", "load_artifact"]
