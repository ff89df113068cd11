"""Small groups scored fast, with exactly the fitted pipelines' results.

A fitted scikit-learn pipeline spends about 6 ms validating and converting a pandas frame in its
``ColumnTransformer`` whatever the number of rows, twenty times what gradient boosting then needs to predict 16
rows. :class:`CompiledPipeline` does that feature step from the fitted step's own numbers and hands the final
estimator the very matrix the pipeline would:

- one-hot columns: for every category of every column, the encoder's own output row, looked up (an unseen category
  gives the encoder's all-zero row: ``handle_unknown="ignore"``; infrequent categories share their column);
- numeric columns: missing values replaced by the imputer's fitted statistics, then ``(x - mean_) / scale_`` as the
  scaler computes it;
- passthrough columns as they are;
- the blocks side by side, sparse (CSR) when the fitted ``ColumnTransformer`` outputs sparse, dense otherwise.

:func:`compile_pipeline` accepts only that shape (another pipeline gets ``None``: use it as it is), and checks
the compiled transform against the pipeline on every category before returning it (``None`` if they differ).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

__all__ = ["CompiledPipeline", "compile_pipeline"]

_UNSEEN = "\x00an unseen category\x00"  # in no encoder's categories: it encodes as all zeros


class Unsupported(Exception):
    """The pipeline has a step the compiled transform does not reproduce."""


class _OneHot:
    """One-hot columns: per input column, a table of output rows (the last row, all zeros, for unseen values)."""

    def __init__(self, transformer: Any, columns: list[str]) -> None:
        encoder = _only_step(transformer, OneHotEncoder)
        if encoder.handle_unknown != "ignore" or encoder.drop is not None:
            raise Unsupported("one-hot encoding without handle_unknown='ignore' and drop=None")
        if not all(isinstance(value, str) for values in encoder.categories_ for value in values):
            raise Unsupported("categories that are not strings")
        self.columns = columns
        # one probe row per (column, category): that category in its column, unseen values everywhere else
        rows = [
            {other: (category if other == column else _UNSEEN) for other in columns}
            for column, categories in zip(columns, encoder.categories_)
            for category in categories
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "found unknown categories": they are the point
            encoded = transformer.transform(pd.DataFrame(rows, columns=columns, dtype=object))
        encoded = encoded.toarray() if sp.issparse(encoded) else np.asarray(encoded, dtype=np.float64)
        self.width = encoded.shape[1]
        self.codes: list[dict[str, int]] = []
        self.tables: list[np.ndarray] = []
        start = 0
        for categories in encoder.categories_:
            count = len(categories)
            self.codes.append({category: code for code, category in enumerate(categories)})
            self.tables.append(np.vstack([encoded[start : start + count], np.zeros((1, self.width))]))
            start += count

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(frame), self.width))
        for column, codes, table in zip(self.columns, self.codes, self.tables):
            unseen = len(codes)
            rows = [codes.get(value, unseen) for value in frame[column].tolist()]
            out += table[rows]  # each column's rows are 0/1 in columns of its own: the sum is exact
        return out


class _ImputedScaled:
    """Numeric columns: the imputer's fitted statistics for missing values, then the scaler's mean and scale."""

    def __init__(self, transformer: Any, columns: list[str]) -> None:
        steps = transformer.steps if isinstance(transformer, Pipeline) else [(None, transformer)]
        if [type(step) for _, step in steps] != [SimpleImputer, StandardScaler]:
            raise Unsupported("numeric steps other than SimpleImputer then StandardScaler")
        imputer, scaler = steps[0][1], steps[1][1]
        statistics = np.asarray(imputer.statistics_, dtype=np.float64)
        missing = imputer.missing_values
        if imputer.add_indicator or not (isinstance(missing, float) and missing != missing):
            raise Unsupported("an imputer with a missing indicator or missing values other than NaN")
        if not np.isfinite(statistics).all():
            raise Unsupported("an imputer that drops empty columns")
        self.columns = columns
        self.statistics = statistics
        self.mean = scaler.mean_ if scaler.with_mean else None
        self.scale = scaler.scale_ if scaler.with_std else None

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        values = np.column_stack([frame[column].to_numpy(dtype=np.float64) for column in self.columns])
        if np.isinf(values).any():  # as the pipeline's input check refuses it
            raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
        missing = np.isnan(values)
        if missing.any():
            values = np.where(missing, self.statistics, values)
        if self.mean is not None:
            values -= self.mean
        if self.scale is not None:
            values /= self.scale
        return values


class _Passthrough:
    def __init__(self, transformer: Any, columns: list[str]) -> None:
        if not (transformer == "passthrough" or _is_identity(transformer)):
            raise Unsupported(f"a transformer {type(transformer).__name__}")
        self.columns = columns
        self.width = len(columns)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([frame[column].to_numpy(dtype=np.float64) for column in self.columns])


class CompiledPipeline:
    """A fitted ``Pipeline([("features", ColumnTransformer(...)), ("model", estimator)])`` of one-hot, imputed and
    scaled, and passthrough columns, with its feature step done by lookups; the same outputs, faster on small
    frames. Build it with :func:`compile_pipeline`."""

    def __init__(self, pipeline: Pipeline) -> None:
        if len(pipeline.steps) != 2 or not isinstance(pipeline.steps[0][1], ColumnTransformer):
            raise Unsupported("a pipeline other than a ColumnTransformer and an estimator")
        features: ColumnTransformer = pipeline.steps[0][1]
        self.estimator = pipeline.steps[1][1]
        self.sparse = bool(features.sparse_output_)
        self.blocks: list[Any] = []
        for _, transformer, columns in features.transformers_:
            if transformer == "drop" or not len(columns):
                continue
            if not all(isinstance(column, str) for column in columns):
                raise Unsupported("columns chosen other than by name")
            block = _block(transformer, list(columns))
            self.blocks.append(block)

    def transform(self, frame: pd.DataFrame) -> Any:
        """What the pipeline's feature step gives for ``frame`` (a prepared frame): CSR or dense, equal values."""
        dense = np.hstack([block.transform(frame) for block in self.blocks])
        return sp.csr_matrix(dense) if self.sparse else dense

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The pipeline's ``predict_proba(frame)``."""
        return self.estimator.predict_proba(self.transform(frame))


def compile_pipeline(pipeline: Pipeline) -> CompiledPipeline | None:
    """``pipeline`` compiled, or None when it has a step the compiled transform does not reproduce, or when the
    compiled transform differs from the pipeline's on a probe frame: every category of every column, an unseen
    one, missing and ordinary numbers."""
    try:
        compiled = CompiledPipeline(pipeline)
        frame = _probe(compiled, list(pipeline.steps[0][1].feature_names_in_))
        expected = pipeline.steps[0][1].transform(frame)
        got = compiled.transform(frame)
        if sp.issparse(expected) != sp.issparse(got) or not np.array_equal(_dense(expected), _dense(got)):
            return None
        if not np.array_equal(pipeline.predict_proba(frame), compiled.predict_proba(frame)):
            return None
    except (Unsupported, AttributeError, KeyError, ValueError):
        return None
    return compiled


def _block(transformer: Any, columns: list[str]) -> Any:
    for kind in (_OneHot, _ImputedScaled, _Passthrough):
        try:
            return kind(transformer, columns)
        except Unsupported:
            continue
    raise Unsupported(f"a {type(transformer).__name__} on {columns}")


def _only_step(transformer: Any, kind: type) -> Any:
    steps = transformer.steps if isinstance(transformer, Pipeline) else [(None, transformer)]
    if len(steps) != 1 or not isinstance(steps[0][1], kind):
        raise Unsupported(f"a transformer other than one {kind.__name__}")
    return steps[0][1]


def _is_identity(transformer: Any) -> bool:
    return (
        isinstance(transformer, FunctionTransformer)
        and transformer.func is None
        and transformer.inverse_func is None
        and not transformer.validate
    )


def _probe(compiled: CompiledPipeline, columns: list[str]) -> pd.DataFrame:
    """A prepared frame with every category of every one-hot column and an unseen one, missing and ordinary
    numbers in the imputed columns, 0 and 1 in the passthrough ones."""
    values: dict[str, list[Any]] = {}
    for block in compiled.blocks:
        for i, column in enumerate(block.columns):
            if isinstance(block, _OneHot):
                values[column] = [*block.codes[i], "Never Seen Before"]
            elif isinstance(block, _ImputedScaled):
                values[column] = [np.nan, 0.0, 1.0, 2.5, 17.0, 1234.5, 0.001, 1e6]
            else:
                values[column] = [0.0, 1.0]
    rows = max(len(column) for column in values.values())
    data = {}
    for column in columns:
        cycle = values[column]
        kind = object if isinstance(cycle[0], str) else np.float64
        data[column] = pd.Series([cycle[i % len(cycle)] for i in range(rows)], dtype=kind)
    return pd.DataFrame(data)


def _dense(matrix: Any) -> np.ndarray:
    return np.asarray(matrix.toarray() if sp.issparse(matrix) else matrix)
