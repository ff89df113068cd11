"""A fitted scikit-learn estimator as the function of a ``batch="columns"`` model (``Model.from_estimator``).

:class:`EstimatorScorer` takes the fields' column arrays (missing values NaN, as ``pandas.read_csv`` gives them),
optionally turns them into the estimator's input with the user's ``prepare``, and scores them: a group of up to
``small_group`` rows through the compiled form (``_compile.py``: numpy only, the estimator's scores within 1e-9),
a larger chunk through the estimator itself on a DataFrame of the same columns, where its per-call validation is
spread over many rows. An estimator (or method) that does not compile is scored by the estimator for every group;
that is said once, when the model is made, as a :class:`EstimatorNotCompiled` warning, and ``mlsm models`` shows it.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlsm.errors import ModelDefinitionError
from mlsm.estimators._compile import Compiled, compile_estimator

__all__ = ["SMALL_GROUP", "EstimatorNotCompiled", "EstimatorScorer", "load_artifact"]

#: Groups of up to this many rows go through the compiled form, larger ones through the estimator (measured:
#: docs/estimators.md, "Group size").
SMALL_GROUP = 256

#: The result key of each method when ``output`` names one method.
_KEYS = {"predict_proba": "score", "predict": "prediction", "decision_function": "decision"}


class EstimatorNotCompiled(UserWarning):
    """An estimator model whose compiled form could not be made: every group is scored by the estimator itself."""


class EstimatorScorer:
    """Scores column arrays with a fitted estimator; a model's ``fcn`` for ``batch="columns"``.

    ``estimator``: a fitted estimator or ``Pipeline``, or the path of a joblib file holding one (or a dict holding
    it under ``"estimator"`` or ``"pipeline"``, with the scikit-learn version under ``"sklearn"``). ``output``: None
    (``{"score": P(classes_[1])}`` for a binary classifier, ``{"prediction": value}`` for a regressor), a method
    name (``predict_proba`` -> ``score``, ``predict`` -> ``prediction``, ``decision_function`` -> ``decision``,
    any other method -> its own name), or a mapping of result key -> method. ``key`` names the model in messages.
    """

    def __init__(
        self,
        estimator: Any,
        fields: Mapping[str, Any],
        *,
        key: str,
        output: str | Mapping[str, str] | None = None,
        prepare: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
        small_group: int | None = None,
    ) -> None:
        self.key = key
        #: ``{"path", "sha256", "sklearn"}`` when loaded from a file (the run's provenance records it), else None.
        self.artifact: dict[str, str] | None = None
        if isinstance(estimator, (str, os.PathLike)):
            estimator, self.artifact = load_artifact(Path(estimator))
        if not hasattr(estimator, "fit"):
            raise ModelDefinitionError(f"model {key!r}: expected a fitted scikit-learn estimator, got {estimator!r}")
        if small_group is None:
            small_group = SMALL_GROUP
        if isinstance(small_group, bool) or not isinstance(small_group, int) or small_group < 0:
            raise ModelDefinitionError(f"model {key!r}: small_group must be a whole number >= 0, got {small_group!r}")
        self.estimator = estimator
        self.prepare = prepare
        self.small_group = small_group
        self.outputs = _outputs(key, estimator, output)
        self.columns = _input_columns(key, estimator, list(fields), prepare)
        self.reason: str | None = None
        self._compiled: list[tuple[str, Compiled]] | None = None
        compiled = []
        for result_key, method in self.outputs:
            made = compile_estimator(estimator, self.columns, method=method)
            if made.compiled is None:
                self.reason = f"{method}: {made.reason}"
                break
            compiled.append((result_key, made.compiled))
        else:
            self._compiled = compiled
        if self.reason is not None:
            warnings.warn(
                f"model {key!r} is not compiled ({self.reason}); every group is scored by the estimator itself",
                EstimatorNotCompiled,
                stacklevel=3,
            )

    @property
    def compiled(self) -> bool:
        """Whether small groups are scored by the compiled form (else :attr:`reason` says why not)."""
        return self._compiled is not None

    @property
    def description(self) -> str:
        """The steps as compiled (``ColumnTransformer[...] -> LogisticRegression``), or why they are not."""
        if self._compiled is None:
            return f"not compiled: {self.reason}"
        return self._compiled[0][1].description

    def __call__(self, columns: dict[str, Any]) -> dict[str, Any]:
        """The result columns (result key -> array) for the rows of ``columns`` (field name -> array)."""
        data = self.prepare(columns) if self.prepare is not None else columns
        count = _length(data, self.columns)
        if self._compiled is not None and count <= self.small_group:
            return {result_key: compiled(data) for result_key, compiled in self._compiled}
        frame = self._frame(data)
        out: dict[str, Any] = {}
        for result_key, method in self.outputs:
            values = np.asarray(getattr(self.estimator, method)(frame))
            if method == "predict_proba":
                values = values[:, 1]
            elif values.ndim == 2 and values.shape[1] == 1:
                values = values[:, 0]
            out[result_key] = values
        return out

    def _frame(self, data: Mapping[str, Any]) -> Any:
        import pandas as pd

        return pd.DataFrame({name: data[name] for name in self.columns})

    def __repr__(self) -> str:
        return f"<EstimatorScorer {self.key} {type(self.estimator).__name__}: {self.description}>"


def load_artifact(path: Path) -> tuple[Any, dict[str, str]]:
    """The estimator in a joblib file and ``{"path", "sha256", "sklearn"}`` (the version it was saved with);
    ``ModelDefinitionError`` when the file is missing or was saved by another scikit-learn version."""
    import joblib
    import sklearn

    if not path.is_file():
        raise ModelDefinitionError(f"model artifact {path} not found")
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    saved: str | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = joblib.load(path)
    for warning in caught:
        found = getattr(warning.message, "original_sklearn_version", None)  # sklearn's InconsistentVersionWarning
        if found is not None:
            saved = str(found)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if isinstance(loaded, Mapping):
        saved = str(loaded["sklearn"]) if "sklearn" in loaded else saved
        loaded = loaded.get("estimator", loaded.get("pipeline"))
        if loaded is None:
            raise ModelDefinitionError(f"{path}: a dict without an 'estimator' or 'pipeline' entry")
    if saved is not None and saved != sklearn.__version__:
        raise ModelDefinitionError(
            f"{path.name} was saved with scikit-learn {saved} and this is {sklearn.__version__}: retrain it, or "
            f"score it with scikit-learn {saved}"
        )
    return loaded, {"path": str(path.resolve()), "sha256": digest, "sklearn": saved or sklearn.__version__}


def _outputs(key: str, estimator: Any, output: str | Mapping[str, str] | None) -> list[tuple[str, str]]:
    """``(result key, method)`` pairs of the model's result."""
    from sklearn.base import is_classifier, is_regressor

    if output is None:
        if is_classifier(estimator):
            pairs = [("score", "predict_proba")]
        elif is_regressor(estimator):
            pairs = [("prediction", "predict")]
        else:
            raise ModelDefinitionError(
                f"model {key!r}: {type(estimator).__name__} is neither a classifier nor a regressor: give output="
            )
    elif isinstance(output, str):
        pairs = [(_KEYS.get(output, output), output)]
    elif isinstance(output, Mapping) and output:
        pairs = [(result_key, method) for result_key, method in output.items()]
    else:
        raise ModelDefinitionError(f"model {key!r}: output must be a method name or a mapping, got {output!r}")
    for result_key, method in pairs:
        if not isinstance(result_key, str) or not isinstance(method, str) or not result_key:
            raise ModelDefinitionError(f"model {key!r}: output maps result keys to method names, got {output!r}")
        if not callable(getattr(estimator, method, None)):
            raise ModelDefinitionError(f"model {key!r}: {type(estimator).__name__} has no method {method!r}")
        classes = getattr(estimator, "classes_", None)
        if method == "predict_proba" and (classes is None or len(classes) != 2):
            count = "no" if classes is None else len(classes)
            raise ModelDefinitionError(
                f"model {key!r}: predict_proba gives P(classes_[1]) of a binary classifier; this one has {count} "
                "classes (give output= another method)"
            )
    return pairs


def _input_columns(key: str, estimator: Any, fields: list[str], prepare: Callable[..., Any] | None) -> list[str]:
    """The columns the estimator reads: its ``feature_names_in_``, else the fields in order."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return fields
    columns = [str(name) for name in names]
    missing = [name for name in columns if name not in fields]
    if missing and prepare is None:
        raise ModelDefinitionError(
            f"model {key!r}: the estimator reads columns that are not among the fields: {', '.join(missing)}"
        )
    return columns


def _length(data: Mapping[str, Any], columns: list[str]) -> int:
    for name in columns:
        if name in data:
            return len(data[name])
    return len(next(iter(data.values()))) if data else 0
