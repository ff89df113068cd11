"""Fitted scikit-learn estimators and pipelines compiled into numpy functions that score a small group of rows
with the estimator's own numbers, without pandas and without scikit-learn's per-call validation.

:func:`compile_estimator` reads the fitted steps (encoders' categories and their own outputs, imputers' statistics,
scalers' ``mean_``/``scale_``, linear coefficients, every tree's nodes) and returns a :class:`Compiled` that takes
a mapping of column arrays (missing values as NaN or None, as ``pandas.read_csv`` gives NaN) and returns the same
numbers as ``predict_proba(frame)[:, 1]`` (binary classifiers), ``predict(frame)`` (regressors) or
``decision_function(frame)``, within 1e-9 (bit for bit for the trees). Before returning it, the compiled form is
checked against the estimator on probe rows (every category, an unseen one, missing values, ordinary numbers).
What it does not reproduce gets ``Compilation(None, reason)`` naming the step; such an estimator is scored as it is.

Where scikit-learn raises for an input (NaN reaching a step that refuses it, an unknown category with
``handle_unknown="error"``, infinity, a float32 overflow before a tree), the compiled form raises ``ValueError``.
See docs/estimators.md for the measurements behind this design.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Compilation", "Compiled", "compile_estimator"]

#: Largest difference allowed between the compiled scores and the estimator's on the probe rows.
TOLERANCE = 1e-9

Data = Any  # a list of 1-D columns (a frame's columns) or a 2-D array (what a step outputs)
Step = Callable[[Data], Data]
Final = Callable[[Data], np.ndarray]

_UNSEEN = "\x00a category never seen in fit\x00"


class _Unsupported(Exception):
    """A step (or a setting of one) that the compiled form does not reproduce; the message names it."""


class Compilation(NamedTuple):
    """What :func:`compile_estimator` gives: the compiled form, or None and the reason it could not be made."""

    compiled: Compiled | None
    reason: str | None


class Compiled:
    """A fitted estimator compiled for small groups; call it with a mapping of column name -> array or list (all of
    length n) to get the n scores as a float64 array."""

    def __init__(
        self, columns: list[str], kinds: list[bool], steps: list[Step], final: Final, method: str, description: str
    ) -> None:
        self.columns = columns
        self.method = method
        self.description = description
        self._kinds = kinds  # True: the column holds categories (kept as Python objects); False: numbers
        self._steps = steps
        self._final = final

    def __call__(self, data: Mapping[str, Any]) -> np.ndarray:
        """The estimator's scores for the rows of ``data`` (every name in :attr:`columns` present, equal lengths)."""
        columns = [
            _categorical_column(data[name]) if categorical else _numeric_column(data[name], name)
            for name, categorical in zip(self.columns, self._kinds)
        ]
        lengths = {len(column) for column in columns}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths {sorted(lengths)} for {self.columns}")
        value: Data = columns
        for step in self._steps:
            value = step(value)
        return self._final(value)

    def __repr__(self) -> str:
        return f"<Compiled {self.description}>"


def compile_estimator(
    estimator: Any, columns: Sequence[str], *, method: str | None = None, verify: bool = True
) -> Compilation:
    """Compile a fitted estimator or ``Pipeline`` that reads ``columns`` (the names of the arrays it will be given;
    the estimator takes its own ``feature_names_in_`` from them, or all of them in order when it was fitted without
    names). ``method`` defaults to ``predict_proba`` for classifiers (binary only: the probability of
    ``classes_[1]``) and ``predict`` for regressors. Returns ``Compilation(compiled, None)`` or
    ``Compilation(None, reason)``."""
    try:
        compiled, probe = _build(estimator, list(columns), method)
        if verify:
            _verify(estimator, compiled, probe)
    except _Unsupported as exc:
        return Compilation(None, str(exc))
    return Compilation(compiled, None)


# -- the estimator's shape --------------------------------------------------------------------------------------


def _build(estimator: Any, columns: list[str], method: str | None) -> tuple[Compiled, dict[str, list[Any]]]:
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        steps = [step for _, step in estimator.steps if step is not None and not _is_passthrough(step)]
        if not steps:
            raise _Unsupported("a pipeline without an estimator")
        transforms, final = steps[:-1], steps[-1]
    else:
        transforms, final = [], estimator
    if not hasattr(final, "n_features_in_") and not hasattr(estimator, "n_features_in_"):
        raise _Unsupported(f"{type(final).__name__} is not fitted (or not a scikit-learn estimator)")
    names = _input_names(estimator, columns)
    method = _method(final, method)
    probe: dict[str, list[Any]] = {name: [] for name in names}
    kinds = [False] * len(names)
    compiled_steps: list[Step] = []
    labels: list[str] = []
    head = _Head(names, kinds, probe)
    for i, transform in enumerate(transforms):
        compiled_steps.append(_transform(transform, head if i == 0 else None))
        labels.append(_label(transform))
    score, label = _final(final, method, head if not transforms else None, sparse=_sparse_before(transforms))
    labels.append(label)
    for name, values in probe.items():
        values.extend([0.0, 1.0, -1.0, 0.5, 2.5, 17.0, 1234.5, 3.25e5, np.nan] if not kinds[names.index(name)] else [])
    compiled = Compiled(names, kinds, compiled_steps, score, method, " -> ".join(labels))
    return compiled, probe


class _Head:
    """The estimator's input columns: their names, which hold categories, and probe values found on the way."""

    def __init__(self, names: list[str], kinds: list[bool], probe: dict[str, list[Any]]) -> None:
        self.names = names
        self.kinds = kinds
        self.probe = probe

    def mark(self, position: int, categories: Sequence[Any] | None, numeric_values: Sequence[float] = ()) -> None:
        """Column ``position`` is read by an encoder with these ``categories`` (objects when they are not numbers),
        or by a numeric step whose fitted numbers are worth probing."""
        name = self.names[position]
        values = self.probe[name]
        if categories is not None:
            if any(not _is_number(value) for value in categories):
                self.kinds[position] = True
                values.extend([*categories, _UNSEEN, np.nan])
            else:
                finite = [float(value) for value in categories if value == value]
                values.extend([*finite, (max(finite) if finite else 0.0) + 1.5, np.nan])
        values.extend(float(value) for value in numeric_values if value == value)


def _input_names(estimator: Any, columns: list[str]) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        names = [str(name) for name in names]
        missing = [name for name in names if name not in columns]
        if missing:
            raise _Unsupported(f"the estimator reads columns {missing} that are not among the columns given")
        return names
    count = int(getattr(estimator, "n_features_in_", len(columns)))
    if count != len(columns):
        raise _Unsupported(
            f"the estimator was fitted without column names on {count} columns, and {len(columns)} columns are given"
        )
    return list(columns)


def _method(final: Any, method: str | None) -> str:
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(final):
        if len(getattr(final, "classes_", ())) != 2:
            raise _Unsupported(f"a classifier with {len(getattr(final, 'classes_', ()))} classes (only binary ones)")
        method = method or "predict_proba"
        if method not in ("predict_proba", "decision_function"):
            raise _Unsupported(f"method {method!r} of a classifier (compiled: predict_proba, decision_function)")
    elif is_regressor(final):
        method = method or "predict"
        if method != "predict":
            raise _Unsupported(f"method {method!r} of a regressor (compiled: predict)")
    else:
        raise _Unsupported(f"a final step {type(final).__name__} that is neither a classifier nor a regressor")
    return method


def _label(step: Any) -> str:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(step, ColumnTransformer):
        inner = [_label(t) for _, t, cols in step.transformers_ if not _is_drop(t) and _count(cols)]
        return f"ColumnTransformer[{', '.join(inner)}]"
    if isinstance(step, Pipeline):
        return " -> ".join(_label(s) for _, s in step.steps if s is not None and not _is_passthrough(s))
    if isinstance(step, str):
        return step
    return type(step).__name__


# -- transforms -------------------------------------------------------------------------------------------------


def _transform(step: Any, head: _Head | None, positions: list[int] | None = None) -> Step:
    """One fitted transformer as a function of its input; ``head`` is given when it reads the estimator's input
    columns (``positions`` of them), so that it can say which hold categories."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

    if head is not None and positions is None:
        positions = list(range(len(head.names)))
    if isinstance(step, ColumnTransformer):
        return _column_transformer(step, head)
    if isinstance(step, Pipeline):
        inner = [s for _, s in step.steps if s is not None and not _is_passthrough(s)]
        functions = []
        for inner_step in inner:
            functions.append(_transform(inner_step, head, positions))
            if not _keeps_columns(inner_step):
                head = None  # later steps no longer read the input columns one for one
        return _chain(functions)
    if _is_passthrough(step):
        return _matrix
    if isinstance(step, (OneHotEncoder, OrdinalEncoder)):
        if head is not None and positions is not None:
            for position, categories in zip(positions, step.categories_):
                head.mark(position, list(categories))
        return _Lookup(step)
    if isinstance(step, SimpleImputer):
        imputer = _Imputer(step)
        if head is not None and positions is not None:
            for i, position in enumerate(positions):
                if imputer.categorical:
                    head.mark(position, [imputer.statistics[i]])
                else:
                    head.mark(position, None, [imputer.statistics[i]])
        return imputer
    if isinstance(step, StandardScaler):
        if head is not None and positions is not None and step.mean_ is not None:
            for position, mean in zip(positions, step.mean_):
                head.mark(position, None, [float(mean)])
        return _Scaler(step)
    if isinstance(step, FunctionTransformer):
        return _function(step)
    raise _Unsupported(
        f"a {type(step).__name__} step (compiled: OneHotEncoder, OrdinalEncoder, SimpleImputer, "
        "StandardScaler, ColumnTransformer, Pipeline, FunctionTransformer without a function or with a "
        "numpy ufunc)"
    )


def _chain(functions: list[Step]) -> Step:
    def run(data: Data) -> Data:
        for function in functions:
            data = function(data)
        return data

    return run


def _column_transformer(step: Any, head: _Head | None) -> Step:
    """The fitted blocks side by side, in ``transformers_`` order; dense (a sparse output holds the same numbers)."""
    names_in = getattr(step, "feature_names_in_", None)
    names = [str(name) for name in names_in] if names_in is not None else None
    count = int(step.n_features_in_)
    blocks: list[tuple[list[int], Step]] = []
    for name, transformer, selection in step.transformers_:
        if _is_drop(transformer):
            continue
        positions = _positions(selection, names, count, name)
        if not positions:
            continue
        # a head's column names are the ColumnTransformer's own (they come from the same feature_names_in_)
        blocks.append((positions, _transform(transformer, head, positions)))

    def run(data: Data) -> Data:
        columns = _columns(data)
        outputs = [block([columns[i] for i in positions]) for positions, block in blocks]
        matrices = [_matrix(output) for output in outputs]
        if len(matrices) == 1:
            return matrices[0]
        if any(m.dtype == object for m in matrices):
            return np.hstack([m.astype(object) for m in matrices])
        return np.hstack(matrices)

    return run


def _positions(selection: Any, names: list[str] | None, count: int, block: str) -> list[int]:
    if isinstance(selection, (str, int, np.integer)) and not isinstance(selection, bool):
        raise _Unsupported(f"ColumnTransformer block {block!r} selects a single column as a 1-D array")
    if isinstance(selection, slice):
        return list(range(count))[selection]
    values = list(selection.tolist() if hasattr(selection, "tolist") else selection)
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        return [i for i, keep in enumerate(values) if keep]
    if all(isinstance(v, str) for v in values):
        if names is None:
            raise _Unsupported(f"ColumnTransformer block {block!r} selects by name but was fitted without names")
        return [names.index(v) for v in values]
    if all(isinstance(v, (int, np.integer)) for v in values):
        return [int(v) % count for v in values]
    raise _Unsupported(f"ColumnTransformer block {block!r} selects columns by {selection!r}")


class _Lookup:
    """OneHotEncoder / OrdinalEncoder: each column's values looked up in a table of the encoder's own output for
    every category, for an unseen value and for a missing one (infrequent categories, ``drop``, ``unknown_value``
    and ``encoded_missing_value`` are in the table because the encoder wrote it)."""

    def __init__(self, encoder: Any) -> None:
        from sklearn.preprocessing import OneHotEncoder

        self.name = type(encoder).__name__
        categories = [list(c) for c in encoder.categories_]
        count = len(categories)
        if isinstance(encoder, OneHotEncoder):
            widths = [int(w) for w in getattr(encoder, "_n_features_outs", [])]
            if len(widths) != count:
                raise _Unsupported("a OneHotEncoder whose output widths per column are not known")
        else:
            widths = [1] * count
        numeric = [all(_is_number(v) for v in c) for c in categories]
        base = [next((v for v in c if v == v), np.nan) for c in categories]
        self.indexes: list[dict[Any, int]] = []
        self.raises_unknown: list[bool] = []
        self.raises_missing: list[bool] = []
        rows: list[np.ndarray] = []
        self.offsets: list[int] = []
        starts = np.cumsum([0, *widths])
        width = self.width = int(starts[-1])
        owner = np.zeros(width, dtype=np.intp)
        for j in range(count):
            owner[starts[j] : starts[j + 1]] = j
        offset = 0
        for j in range(count):
            known = [v for v in categories[j] if v == v]
            unseen: Any = _UNSEEN if not numeric[j] else (max(float(v) for v in known) + 1.5 if known else 0.0)
            table = np.zeros((len(known) + 2, width))
            table[: len(known)] = self._probe(encoder, j, known, base, numeric)
            unknown = self._probe_or_none(encoder, j, unseen, base, numeric)
            missing = self._probe_or_none(encoder, j, np.nan, base, numeric)
            self.raises_unknown.append(unknown is None)
            self.raises_missing.append(missing is None)
            if unknown is not None:
                table[len(known)] = unknown
            if missing is not None:
                table[len(known) + 1] = missing
            # the table keeps only this column's output block: the others are zero, and the gather below reads the
            # block of the column that owns each output position
            keep = owner == j
            table[:, ~keep] = 0.0
            rows.append(table)
            self.indexes.append({_key(v): i for i, v in enumerate(known)})
            self.offsets.append(offset)
            offset += len(known) + 2
        self.table = np.vstack(rows) if rows else np.zeros((0, width))
        self.owner = owner
        self.positions = np.arange(width)

    @staticmethod
    def _frame(encoder: Any, j: int, values: list[Any], base: list[Any], numeric: list[bool]) -> Any:
        import pandas as pd

        names = getattr(encoder, "feature_names_in_", None)
        data = {}
        for k in range(len(base)):
            column = values if k == j else [base[k]] * len(values)
            data[k] = pd.Series(column, dtype=np.float64 if numeric[k] else object)
        frame = pd.DataFrame(data)
        if names is not None:
            frame.columns = [str(n) for n in names]
            return frame
        return frame.to_numpy(dtype=object) if not all(numeric) else frame.to_numpy(dtype=np.float64)

    def _probe(self, encoder: Any, j: int, values: list[Any], base: list[Any], numeric: list[bool]) -> np.ndarray:
        if not values:
            return np.zeros((0, self.width))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = encoder.transform(self._frame(encoder, j, values, base, numeric))
        return _dense(out)

    def _probe_or_none(
        self, encoder: Any, j: int, value: Any, base: list[Any], numeric: list[bool]
    ) -> np.ndarray | None:
        try:
            return self._probe(encoder, j, [value], base, numeric)[0]
        except ValueError:
            return None

    def __call__(self, data: Data) -> np.ndarray:
        columns = _columns(data)
        n = len(columns[0]) if columns else 0
        codes = np.empty((n, len(columns)), dtype=np.intp)
        for j, column in enumerate(columns):
            index, offset = self.indexes[j], self.offsets[j]
            unknown, missing = offset + len(index), offset + len(index) + 1
            values = column.tolist()
            found = [missing if v is None or v != v else offset + index.get(_key(v), len(index)) for v in values]
            if self.raises_unknown[j] and unknown in found:
                value = values[found.index(unknown)]
                raise ValueError(f"Found unknown categories [{value!r}] in column {j} during transform")
            if self.raises_missing[j] and missing in found:
                raise ValueError(f"Found unknown categories [nan] in column {j} during transform")
            codes[:, j] = found
        return self.table[codes[:, self.owner], self.positions]


class _Imputer:
    """SimpleImputer: missing values replaced by the fitted ``statistics_``, columns without statistics dropped
    (unless ``keep_empty_features``), the missing indicator appended."""

    def __init__(self, imputer: Any) -> None:
        missing = imputer.missing_values
        self.nan_missing = isinstance(missing, float) and math.isnan(missing)
        if missing is None or (not self.nan_missing and not isinstance(missing, (int, float, str))):
            raise _Unsupported(f"SimpleImputer(missing_values={missing!r}) (compiled: NaN, a number or a string)")
        self.missing = missing
        self.categorical = imputer._fit_dtype.kind == "O"
        statistics = np.asarray(imputer.statistics_)
        if imputer.keep_empty_features:
            keep = np.ones(len(statistics), dtype=bool)
        else:
            keep = np.array([s == s for s in statistics.tolist()], dtype=bool)  # NaN statistics: dropped
        fill = statistics.astype(imputer._fit_dtype, copy=False)
        self.statistics = fill.astype(object if self.categorical else np.float64).tolist()
        self.fill = np.asarray(self.statistics, dtype=object if self.categorical else np.float64)
        self.keep = None if keep.all() else np.flatnonzero(keep)
        indicator = getattr(imputer, "indicator_", None) if imputer.add_indicator else None
        self.indicator: np.ndarray | None = None
        self.strict_indicator = False
        if indicator is not None:
            self.indicator = np.asarray(indicator.features_, dtype=np.intp)
            self.strict_indicator = indicator.features == "missing-only" and bool(indicator.error_on_new)
            self.indicator_all = len(self.indicator) == len(statistics)

    def mask(self, matrix: np.ndarray) -> np.ndarray:
        if self.nan_missing:
            if matrix.dtype == object:
                return np.array([[v is None or v != v for v in row] for row in matrix.tolist()], dtype=bool).reshape(
                    matrix.shape
                )
            return np.isnan(matrix)
        if matrix.dtype == object:
            if any(v is None or v != v for row in matrix.tolist() for v in row):
                raise ValueError("Input contains NaN")
        elif np.isnan(matrix).any():
            raise ValueError("Input X contains NaN.")
        return np.asarray(matrix == self.missing, dtype=bool)

    def __call__(self, data: Data) -> np.ndarray:
        matrix = _matrix(data)
        if self.categorical:
            matrix = matrix.astype(object)
        else:
            matrix = _float_matrix(matrix, copy=True)
            if np.isinf(matrix).any():
                raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
        mask = self.mask(matrix)
        if mask.any():
            matrix = np.where(mask, self.fill, matrix)
        if self.keep is not None:
            matrix = matrix[:, self.keep]
        if self.indicator is None:
            return matrix
        if self.strict_indicator and not self.indicator_all:
            others = np.setdiff1d(np.arange(mask.shape[1]), self.indicator)
            if mask[:, others].any():
                raise ValueError(
                    f"The features {others[mask[:, others].any(axis=0)]} have missing values in transform but have "
                    "no missing values in fit."
                )
        flags = mask[:, self.indicator]
        if matrix.dtype == object:
            return np.hstack([matrix, flags.astype(object)])
        return np.hstack([matrix, flags.astype(np.float64)])


class _Scaler:
    """StandardScaler: ``(x - mean_) / scale_`` as it computes them (NaN passes, infinity is refused)."""

    def __init__(self, scaler: Any) -> None:
        self.mean = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean else None
        self.scale = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std else None

    def __call__(self, data: Data) -> np.ndarray:
        matrix = _float_matrix(_matrix(data), copy=True)
        if np.isinf(matrix).any():
            raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
        if self.mean is not None:
            matrix -= self.mean
        if self.scale is not None:
            matrix /= self.scale
        return matrix


def _function(step: Any) -> Step:
    """FunctionTransformer: the identity, a numpy ufunc on the numbers, or check_array (inside
    HistGradientBoosting); any other function runs user code on a DataFrame and is not compiled."""
    from sklearn.utils.validation import check_array

    func = step.func
    if step.kw_args:
        raise _Unsupported("a FunctionTransformer with kw_args")
    if func is None:
        return _matrix
    if isinstance(func, np.ufunc) and func.nin == 1 and func.nout == 1:

        def apply(data: Data) -> np.ndarray:
            with np.errstate(all="ignore"):
                return np.asarray(func(_float_matrix(_matrix(data))), dtype=np.float64)

        return apply
    if isinstance(func, functools.partial) and func.func is check_array and not func.args:
        keywords = dict(func.keywords)
        if keywords.get("ensure_all_finite") is False and keywords.get("dtype") in ([np.float64], np.float64):
            return lambda data: _float_matrix(_matrix(data))
    name = getattr(func, "__name__", type(func).__name__)
    raise _Unsupported(f"FunctionTransformer(func={name}) runs its own code on a DataFrame")


# -- final estimators ---------------------------------------------------------------------------------------------


def _final(final: Any, method: str, head: _Head | None, *, sparse: bool) -> tuple[Final, str]:
    """The final estimator as a function of the (n, d) float64 matrix the steps before it give."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    kind = type(final)
    if kind in (LogisticRegression, LinearRegression, Ridge):
        return _linear(final, method), kind.__name__
    if kind in (DecisionTreeClassifier, DecisionTreeRegressor):
        return _forest(final, [final], method, sparse), kind.__name__
    if kind in (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor):
        if method == "decision_function":
            raise _Unsupported(f"{kind.__name__} has no decision_function")
        return _forest(final, list(final.estimators_), method, sparse), f"{kind.__name__}({len(final.estimators_)})"
    if kind in (GradientBoostingClassifier, GradientBoostingRegressor):
        return _gradient_boosting(final, method), f"{kind.__name__}({final.n_estimators_})"
    if kind in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        return _hist_gradient_boosting(final, method, head), f"{kind.__name__}({final.n_iter_})"
    raise _Unsupported(
        f"a final estimator {kind.__name__} (compiled: LogisticRegression, LinearRegression, Ridge, decision trees, "
        "random forests, extra trees, gradient boosting, histogram gradient boosting)"
    )


def _finite(matrix: np.ndarray) -> None:
    if not np.isfinite(matrix).all():
        bad = "NaN" if np.isnan(matrix).any() else "infinity or a value too large for dtype('float64')"
        raise ValueError(f"Input X contains {bad}.")


def _linear(model: Any, method: str) -> Final:
    """``X @ coef_.T + intercept_`` as scikit-learn computes it; the logistic function of it for probabilities."""
    from scipy.special import expit

    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if coef.ndim == 2 and coef.shape[0] != 1:
        raise _Unsupported(f"a {type(model).__name__} with {coef.shape[0]} outputs")
    column = coef.reshape(-1, 1) if coef.ndim == 2 else coef
    probability = method == "predict_proba"

    def score(data: Data) -> np.ndarray:
        matrix = _float_matrix(data)
        _finite(matrix)
        raw = (matrix @ column + intercept).reshape(-1)
        return expit(raw) if probability else raw

    return score


class _Trees:
    """Trees flattened into one node table and walked level by level for every (tree, row) at once; leaves point to
    themselves, so walking as deep as the deepest tree ends every walk on its leaf."""

    def __init__(
        self,
        feature: np.ndarray,
        threshold: np.ndarray,
        children: np.ndarray,
        missing_right: np.ndarray | None,
        roots: np.ndarray,
        depth: int,
    ) -> None:
        self.feature = feature
        self.threshold = threshold
        self.children = children  # (2 * nodes,): left then right child of every node
        self.missing_right = missing_right  # None: NaN goes right everywhere (a comparison with NaN is false)
        self.roots = roots.reshape(-1, 1)
        self.depth = depth

    def leaves(self, matrix: np.ndarray) -> np.ndarray:
        """(trees, rows) leaf index of every row in every tree; ``matrix`` is (rows, features) float64."""
        n = matrix.shape[0]
        if n == 1:
            return self._leaves_of_one(matrix[0])
        by_feature = np.ascontiguousarray(matrix.T).reshape(-1)
        node = np.repeat(self.roots, n, axis=1)
        rows = np.arange(n)
        has_nan = self.missing_right is not None and bool(np.isnan(matrix).any())
        for _ in range(self.depth):
            value = by_feature[self.feature[node] * n + rows]
            right = value > self.threshold[node]
            if has_nan:
                assert self.missing_right is not None
                right |= np.isnan(value) & self.missing_right[node]
            node = self.children[2 * node + right]
        return node

    def _leaves_of_one(self, row: np.ndarray) -> np.ndarray:
        """:meth:`leaves` for one row: every node's comparison made at once (one pass over the node table), then
        each tree followed down through the chosen children; the same comparisons, so the same leaves."""
        value = row[self.feature]
        right = value > self.threshold
        if self.missing_right is not None and np.isnan(row).any():
            right |= np.isnan(value) & self.missing_right
        chosen = self.children[2 * self._node_ids + right]
        node = self.roots[:, 0]
        for _ in range(self.depth):
            node = chosen[node]
        return node.reshape(-1, 1)

    @functools.cached_property
    def _node_ids(self) -> np.ndarray:
        return np.arange(len(self.feature), dtype=np.intp)


def _tree_table(trees: list[Any], leaf_value: Callable[[Any], np.ndarray], missing: bool) -> tuple[_Trees, np.ndarray]:
    features, thresholds, children, missing_right, roots, values = [], [], [], [], [], []
    start = 0
    for tree in trees:
        count = tree.node_count
        ids = np.arange(count)
        left = tree.children_left.astype(np.intp)
        right = tree.children_right.astype(np.intp)
        leaf = left < 0
        left = np.where(leaf, ids, left) + start
        right = np.where(leaf, ids, right) + start
        features.append(np.where(leaf, 0, tree.feature).astype(np.intp))
        thresholds.append(np.where(leaf, np.inf, tree.threshold))
        pairs = np.empty(2 * count, dtype=np.intp)
        pairs[0::2], pairs[1::2] = left, right
        children.append(pairs)
        if missing:
            missing_right.append(~np.asarray(tree.missing_go_to_left, dtype=bool))
        roots.append(start)
        values.append(leaf_value(tree))
        start += count
    depth = max(int(tree.max_depth) for tree in trees)
    table = _Trees(
        np.concatenate(features),
        np.concatenate(thresholds),
        np.concatenate(children),
        np.concatenate(missing_right) if missing else None,
        np.asarray(roots, dtype=np.intp),
        depth,
    )
    return table, np.concatenate(values)


def _float32_rounded(matrix: np.ndarray, allow_nan: bool) -> np.ndarray:
    """The matrix as the trees compare it: float32 values (scikit-learn converts X to float32), as float64."""
    if np.isinf(matrix).any() or (not allow_nan and np.isnan(matrix).any()):
        _finite(matrix)
    with np.errstate(over="ignore"):
        rounded = matrix.astype(np.float32)
    if np.isinf(rounded).any():
        raise ValueError("Input X contains infinity or a value too large for dtype('float32').")
    return rounded.astype(np.float64)


def _forest(model: Any, estimators: list[Any], method: str, sparse: bool) -> Final:
    """A decision tree or a forest: the mean over trees of each leaf's value (class fractions for classifiers),
    summed tree after tree as scikit-learn does."""
    from sklearn.base import is_classifier

    classifier = is_classifier(model)
    for tree in estimators:
        if tree.tree_.n_outputs != 1:
            raise _Unsupported(f"a {type(model).__name__} with several outputs")
    first = estimators[0]
    allow_nan = not sparse and bool(first.__sklearn_tags__().input_tags.allow_nan)

    def leaf_value(tree: Any) -> np.ndarray:
        value = tree.value[:, 0, :]
        return np.asarray(value[:, 1] if classifier else value[:, 0], dtype=np.float64)

    table, values = _tree_table([t.tree_ for t in estimators], leaf_value, missing=True)
    count = len(estimators)
    single = count == 1

    def score(data: Data) -> np.ndarray:
        x = _float32_rounded(_float_matrix(data), allow_nan)
        found = values[table.leaves(x)]
        if single:
            return found[0].copy()
        return np.cumsum(found, axis=0)[-1] / count

    return score


def _gradient_boosting(model: Any, method: str) -> Final:
    """GradientBoosting: the init estimator's constant raw prediction plus ``learning_rate * leaf value`` of every
    stage, added stage after stage; the loss's inverse link for probabilities."""
    from scipy.special import expit
    from sklearn.base import is_classifier

    init = model.init_
    if not (isinstance(init, str) and init == "zero") and type(init).__name__ not in (
        "DummyClassifier",
        "DummyRegressor",
    ):
        raise _Unsupported(f"GradientBoosting with an init estimator {type(init).__name__}")
    if model.estimators_.shape[1] != 1:
        raise _Unsupported("GradientBoosting with several trees per stage (multi-class)")
    zero_row = np.zeros((1, model.n_features_in_), dtype=np.float32)
    initial = float(np.asarray(model._raw_predict_init(zero_row)).reshape(-1)[0])
    loss = type(model._loss).__name__
    classifier = is_classifier(model)
    if classifier and method == "predict_proba" and loss not in ("HalfBinomialLoss", "ExponentialLoss"):
        raise _Unsupported(f"GradientBoostingClassifier with loss {loss}")
    trees = [stage[0].tree_ for stage in model.estimators_]
    rate = float(model.learning_rate)
    # the stage sum adds `scale * value` (a double product) per stage, so the products are made once here
    table, values = _tree_table(trees, lambda tree: rate * tree.value[:, 0, 0], missing=False)
    doubled = loss == "ExponentialLoss"

    def score(data: Data) -> np.ndarray:
        x = _float32_rounded(_float_matrix(data), allow_nan=False)
        found = values[table.leaves(x)]
        stages = np.empty((found.shape[0] + 1, found.shape[1]))
        stages[0] = initial
        stages[1:] = found
        raw = np.cumsum(stages, axis=0)[-1]
        if not classifier or method == "decision_function":
            return raw
        return expit(2 * raw) if doubled else expit(raw)

    return score


def _hist_gradient_boosting(model: Any, method: str, head: _Head | None) -> Final:
    """HistGradientBoosting: its own categorical preprocessing (an OrdinalEncoder) when it has one, then the
    baseline plus every predictor's leaf value; NaN follows ``missing_go_to_left``, a category goes left when it is
    in the node's bitset, right when known, and like a missing value when unknown or negative."""
    from scipy.special import expit
    from sklearn.base import is_classifier

    if model.n_trees_per_iteration_ != 1:
        raise _Unsupported("HistGradientBoosting with several trees per iteration (multi-class)")
    preprocess: Step | None = None
    if model._preprocessor is not None:
        preprocess = _column_transformer(model._preprocessor, head)
    known, feature_map = model._bin_mapper.make_known_categories_bitsets()
    known_bits = _bits(known)
    features, thresholds, children, missing_right, categorical, left_rows, known_rows, values, roots = (
        [],
        [],
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    )
    left_bits: list[np.ndarray] = []
    start = 0
    bitset_start = 0
    depth = 0
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        count = len(nodes)
        ids = np.arange(count)
        leaf = nodes["is_leaf"].astype(bool)
        left = np.where(leaf, ids, nodes["left"].astype(np.intp)) + start
        right = np.where(leaf, ids, nodes["right"].astype(np.intp)) + start
        pairs = np.empty(2 * count, dtype=np.intp)
        pairs[0::2], pairs[1::2] = left, right
        children.append(pairs)
        features.append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp))
        thresholds.append(np.where(leaf, np.inf, nodes["num_threshold"]))
        missing_right.append(~nodes["missing_go_to_left"].astype(bool))
        is_categorical = nodes["is_categorical"].astype(bool) & ~leaf
        categorical.append(is_categorical)
        left_rows.append(np.where(is_categorical, nodes["bitset_idx"].astype(np.intp) + bitset_start, 0))
        known_rows.append(np.where(is_categorical, feature_map[nodes["feature_idx"]].astype(np.intp), 0))
        left_bits.append(_bits(predictor.raw_left_cat_bitsets))
        bitset_start += len(predictor.raw_left_cat_bitsets)
        values.append(nodes["value"].astype(np.float64))
        roots.append(start)
        depth = max(depth, int(nodes["depth"].max()))
        start += count
    feature = np.concatenate(features)
    threshold = np.concatenate(thresholds)
    child = np.concatenate(children)
    goes_right_missing = np.concatenate(missing_right)
    is_cat = np.concatenate(categorical)
    any_categorical = bool(is_cat.any())
    left_row = np.concatenate(left_rows)
    known_row = np.concatenate(known_rows)
    left_table = np.vstack([b for b in left_bits if len(b)]) if bitset_start else np.zeros((1, 256), dtype=bool)
    leaf_values = np.concatenate(values)
    root = np.asarray(roots, dtype=np.intp).reshape(-1, 1)
    baseline = float(np.asarray(model._baseline_prediction).reshape(-1)[0])
    link = type(model._loss.link).__name__
    classifier = is_classifier(model)
    if classifier and method == "predict_proba" and link != "LogitLink":
        raise _Unsupported(f"HistGradientBoostingClassifier with link {link}")
    if not classifier and link not in ("IdentityLink", "LogLink"):
        raise _Unsupported(f"HistGradientBoostingRegressor with link {link}")

    def leaves(matrix: np.ndarray) -> np.ndarray:
        n = matrix.shape[0]
        by_feature = np.ascontiguousarray(matrix.T).reshape(-1)
        node = np.repeat(root, n, axis=1)
        rows = np.arange(n)
        nan_seen = bool(np.isnan(matrix).any())
        for _ in range(depth):
            value = by_feature[feature[node] * n + rows]
            right = value > threshold[node]
            if nan_seen or any_categorical:
                missing = np.isnan(value)
                if any_categorical:
                    cat = is_cat[node]
                    if cat.any():
                        # the C code casts the value to uint8; categories are < 256 after the model's own encoder
                        in_range = (value >= 0) & (value < 256)
                        code = np.where(in_range, value, 0).astype(np.intp)
                        in_left = left_table[left_row[node], code] & in_range
                        is_known = known_bits[known_row[node], code] & in_range
                        cat_missing = ~in_left & ~is_known
                        right = np.where(cat, ~in_left & is_known, right)
                        missing = missing | (cat & cat_missing & ~missing)
                right = np.where(missing, goes_right_missing[node], right)
            node = child[2 * node + right]
        return node

    def score(data: Data) -> np.ndarray:
        matrix = _float_matrix(preprocess(data) if preprocess is not None else data)
        found = leaf_values[leaves(matrix)]
        stages = np.empty((found.shape[0] + 1, found.shape[1]))
        stages[0] = baseline
        stages[1:] = found
        raw = np.cumsum(stages, axis=0)[-1]
        if classifier:
            return expit(raw) if method == "predict_proba" else raw
        return np.exp(raw) if link == "LogLink" else raw

    return score


def _bits(bitsets: np.ndarray) -> np.ndarray:
    """(rows, 8) uint32 bitsets as (rows, 256) booleans."""
    words = np.asarray(bitsets, dtype=np.uint32)
    if words.size == 0:
        return np.zeros((0, 256), dtype=bool)
    shifts = np.arange(32, dtype=np.uint32)
    return ((words[:, :, None] >> shifts) & 1).astype(bool).reshape(len(words), 256)


# -- verification -------------------------------------------------------------------------------------------------


def _verify(estimator: Any, compiled: Compiled, probe: dict[str, list[Any]]) -> None:
    """Compare the compiled scores with the estimator's on probe rows; rows the estimator refuses must be refused
    by the compiled form too."""
    import pandas as pd

    names = compiled.columns
    length = max((len(values) for values in probe.values()), default=1) or 1
    data: dict[str, list[Any]] = {}
    for k, name in enumerate(names):
        values = probe[name] or [0.0]
        data[name] = [values[(i + k) % len(values)] for i in range(length)]

    def frame(rows: slice) -> Any:
        return pd.DataFrame(
            {
                name: pd.Series(data[name][rows], dtype=object if categorical else np.float64)
                for name, categorical in zip(names, compiled._kinds)
            }
        )

    def expected(rows: slice) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = getattr(estimator, compiled.method)(frame(rows))
        out = np.asarray(out, dtype=np.float64)
        return out[:, 1] if compiled.method == "predict_proba" else out.reshape(-1)

    groups: list[tuple[slice, np.ndarray | None]]
    try:
        groups = [(slice(0, length), expected(slice(0, length)))]
    except (ValueError, TypeError):
        groups = []
        for i in range(length):
            rows = slice(i, i + 1)
            try:
                groups.append((rows, expected(rows)))
            except (ValueError, TypeError):
                groups.append((rows, None))
    for rows, want in groups:
        part = {name: values[rows] for name, values in data.items()}
        try:
            got = compiled(part)
        except ValueError as exc:
            if want is None:
                continue
            raise _Unsupported(f"the compiled form refuses probe rows the estimator scores ({exc})") from None
        if want is None:
            raise _Unsupported(f"the compiled form scores probe rows the estimator refuses: {part}")
        if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=TOLERANCE, equal_nan=True):
            difference = np.nanmax(np.abs(got - want)) if got.shape == want.shape else "shape"
            raise _Unsupported(f"the compiled scores differ from the estimator's on probe rows (by {difference})")


# -- helpers ------------------------------------------------------------------------------------------------------


def _sparse_before(transforms: list[Any]) -> bool:
    """Whether the matrix reaching the final estimator is sparse (scikit-learn's trees then refuse NaN)."""
    from sklearn.compose import ColumnTransformer

    return any(isinstance(t, ColumnTransformer) and bool(getattr(t, "sparse_output_", False)) for t in transforms)


def _keeps_columns(step: Any) -> bool:
    """Whether a step's output columns are its input columns, one for one (so probe values still apply)."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if isinstance(step, SimpleImputer):
        return not step.add_indicator and (step.keep_empty_features or not _has_nan(step.statistics_))
    return isinstance(step, (StandardScaler, FunctionTransformer)) or _is_passthrough(step)


def _has_nan(values: Any) -> bool:
    return any(v != v for v in np.asarray(values).tolist())


def _is_passthrough(step: Any) -> bool:
    return isinstance(step, str) and step == "passthrough"


def _is_drop(step: Any) -> bool:
    return isinstance(step, str) and step == "drop"


def _count(selection: Any) -> int:
    try:
        return len(selection)
    except TypeError:
        return 1


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _key(value: Any) -> Any:
    """A category as a dict key: numpy scalars as Python ones (equal values hash alike either way)."""
    return value.item() if isinstance(value, np.generic) else value


def _numeric_column(values: Any, name: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False).reshape(-1)
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {name!r} holds values that are not numbers: {exc}") from None


def _categorical_column(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1:
        return values  # the steps read it and make new arrays; it is never written to
    column = np.empty(len(values), dtype=object)
    column[:] = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return column


def _columns(data: Data) -> list[np.ndarray]:
    if isinstance(data, list):
        return data
    return [data[:, j] for j in range(data.shape[1])]


def _matrix(data: Data) -> np.ndarray:
    if not isinstance(data, list):
        return data
    if not data:
        return np.zeros((0, 0))
    if any(column.dtype == object for column in data):
        matrix = np.empty((len(data[0]), len(data)), dtype=object)
        for j, column in enumerate(data):
            matrix[:, j] = column
        return matrix
    return np.column_stack(data)


def _float_matrix(data: Data, copy: bool = False) -> np.ndarray:
    matrix = _matrix(data)
    if matrix.dtype == object:
        try:
            return np.array([[np.nan if v is None else v for v in row] for row in matrix.tolist()], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"could not convert to numbers: {exc}") from None
    return np.array(matrix, dtype=np.float64, copy=True) if copy else matrix.astype(np.float64, copy=False)


def _dense(matrix: Any) -> np.ndarray:
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=np.float64)
