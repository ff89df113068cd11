"""``Model`` and ``SummaryModel``: a user's function with a name, a version, a status and declared fields.

The constructors only store what they are given (the original API); everything is checked when a model set is
planned by :class:`mlsm.Engine`, before any record is scored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from mlsm.engine import run_single
from mlsm.engine._plan import STATUSES  # noqa: F401  (re-exported: mlsm.models.STATUSES as before)

__all__ = ["Model", "SummaryModel"]  # STATUSES (the engine's) stays importable from here and from mlsm


class Model:
    """A wrapped scoring function.

    ``fcn(data=..., results=...) -> dict`` is called per record with ``data`` holding the model's declared
    ``fields`` converted to their types, and ``results`` holding the results of the models that ran before it.
    With ``batch=True``, ``fcn(frame) -> DataFrame`` is called with a pandas DataFrame of many valid rows
    (only the declared fields) and returns one row per input row, in order. With ``batch="columns"``,
    ``fcn(columns) -> dict`` is called with a dict of numpy arrays by field name (missing values NaN, as
    ``pandas.read_csv`` gives them) and returns a dict of result key -> array or list, one value per input row;
    no DataFrame is built, which makes one record cheap. :meth:`from_estimator` makes such a model from a fitted
    scikit-learn estimator.
    """

    kind = "model"

    def __init__(
        self,
        name: str,
        fields: Mapping[str, Any],
        version: Any,
        fcn: Callable[..., Any],
        status: str = "draft",
        *,
        batch: bool | Literal["columns"] = False,
    ) -> None:
        self.name = name
        self.fields = fields
        self.version = version
        self.fcn = fcn
        self.status = status
        self.batch = batch

    @classmethod
    def from_estimator(
        cls,
        name: str,
        version: Any,
        estimator: Any,
        fields: Mapping[str, Any],
        *,
        output: str | Mapping[str, str] | None = None,
        status: str = "draft",
        prepare: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
        small_group: int | None = None,
    ) -> Model:
        """A ``batch="columns"`` model scoring with a fitted scikit-learn estimator or ``Pipeline`` (or the path of
        a joblib file holding one): ``{"score": P(positive class)}`` for a classifier, ``{"prediction": value}``
        for a regressor, unless ``output`` names a method or maps result keys to methods. ``prepare(columns)``
        turns the fields' column arrays into the estimator's input columns; groups up to ``small_group`` rows are
        scored by the compiled form. See :class:`mlsm.estimators.EstimatorScorer` and docs/estimators.md."""
        from mlsm.estimators import EstimatorScorer

        scorer = EstimatorScorer(
            estimator,
            fields,
            key=f"{name}@{version}",
            output=output,
            prepare=prepare,
            small_group=small_group,
        )
        return cls(name, fields, version, scorer, status, batch="columns")

    @property
    def scores_frames(self) -> bool:
        """True when the engine calls ``fcn`` with many rows at once: ``batch=True`` (a DataFrame) or
        ``batch="columns"`` (a dict of column arrays) on a plain model (a summary model always runs per record).
        The one answer to "is this a batch model" for every path."""
        return bool(getattr(self, "batch", False)) and not isinstance(self, SummaryModel)

    @property
    def takes_columns(self) -> bool:
        """True for a batch model called with a dict of column arrays instead of a DataFrame (``batch="columns"``)."""
        return getattr(self, "batch", False) == "columns" and not isinstance(self, SummaryModel)

    @property
    def key(self) -> str:
        """``name@version``: how a model is named in messages, counts and the CLI."""
        return f"{self.name}@{self.version}"

    def __repr__(self) -> str:
        extra = f", batch={self.batch!r}" if self.batch else ""
        return f"{type(self).__name__}({self.name!r}, version={self.version!r}, status={self.status!r}{extra})"

    def execute(self, data: Mapping[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        """Validate ``data``, run the model, and put its result (or ``_error``) at ``results[name][version]``."""
        return run_single(self, data, results)

    def test(self, examples: int | None = None, *, extremes: bool = False) -> bool:
        """Preflight the model as ``mlsm test`` does (its basic example, then ``examples`` inputs generated from its
        fields, default 100, numbers of realistic magnitude unless ``extremes``); False when it raises, returns what
        a run cannot store, or exceeds the time budget on one of them."""
        from mlsm.lifecycle.preflight import preflight_model

        return preflight_model(self, examples=examples, extremes=extremes).passed


class SummaryModel(Model):
    """A model that runs after the others of a record and combines their results (which score wins).

    ``models`` lists the ``{'name': ..., 'version': ...}`` results it needs; ``fcn(data=..., results=...)``
    sees every result of the record, errors included.
    """

    kind = "summary"

    def __init__(
        self,
        name: str,
        models: Sequence[Mapping[str, Any]],
        version: Any,
        fcn: Callable[..., Any],
        fields: Mapping[str, Any] | None = None,
        status: str = "draft",
    ) -> None:
        super().__init__(name, fields if fields is not None else {}, version, fcn, status)
        self.models = models

    def needs(self) -> list[str]:
        """The ``name@version`` keys of the models this summary needs."""
        return [f"{dep['name']}@{dep['version']}" for dep in self.models]
