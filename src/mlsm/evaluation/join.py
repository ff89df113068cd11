"""The point-in-time join: for each outcome and each model@version, the score that was live when the decision was
made, read from the id's stored history (``Store.outcome_results``, streamed: memory grows with the outcomes,
never with the number of documents per id).

A model's *result* for an id is its slot in a document (``results[name][version]``); it is *usable* when it is not
an error slot and holds a finite number (not a boolean) under ``key``. Which result counts, by ``as_of``:

* ``"decision"`` (the default): the newest result of the model in the id's documents with ``_timestamp`` at or
  before the outcome's ``at`` (documents that lack the model are passed over, as in ``current_documents(model=)``).
  ``_timestamp`` is whole seconds, so a score written within the second of the decision counts as in time.
* ``"first"``: the model's first result for the id, whenever it was written.
* ``"latest"``: the model's newest result for the id (its current one).

Each outcome counts once per model, in exactly one of three groups (so ``n + not_scored + late == outcomes``):
scored (the result that counts is usable: its score is joined), ``late`` (``"decision"`` only: no usable result at
or before the decision, but a usable one written after it; excluded, since sales never saw it) and ``not_scored``
(the rest: no result, an error slot, or no number under ``key``).

Outcomes are selected by ``since <= at < until``, then with ``mature_days`` only decisions made at least that many
days before ``now`` are judged; the others are counted as ``too_young``. Without ``models``, every model@version
with a usable result in the joined documents is reported, in name order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlsm._gc import gc_paused
from mlsm.evaluation._stats import IdOrder, ModelEvaluation, PairEvaluation, evaluate_model, evaluate_pair
from mlsm.stores.base import Store, split_model

__all__ = ["AS_OF", "JoinedModel", "JoinedOutcomes", "join_outcomes"]

#: The ways a score is chosen for an outcome (see the module's documentation).
AS_OF = ("decision", "first", "latest")

_DAY = 86_400.0


@dataclass(frozen=True)
class JoinedModel:
    """One model@version's joined rows, in id order: ``ids`` (text), ``scores`` (finite floats) and ``outcomes``
    (bools), all the same length; and the outcomes it could not be judged on."""

    model: str
    ids: npt.NDArray[Any]
    scores: npt.NDArray[np.float64]
    outcomes: npt.NDArray[np.bool_]
    not_scored: int
    late: int

    @property
    def n(self) -> int:
        """How many outcomes have a score of this model."""
        return int(self.scores.shape[0])

    def evaluate(self, level: float = 0.95) -> ModelEvaluation:
        """Every per-model statistic (:func:`mlsm.evaluation._stats.evaluate_model`) over the joined rows."""
        return evaluate_model(self.outcomes, self.scores, self.ids, level)


@dataclass(frozen=True)
class JoinedOutcomes:
    """The join's result: per model its rows and counts; ``outcomes`` the number judged (selected and mature),
    ``too_young`` those left out by ``mature_days``."""

    as_of: str
    key: str
    outcomes: int
    too_young: int
    models: dict[str, JoinedModel]

    def pair(self, a: str, b: str) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64], npt.NDArray[np.float64],
                                             npt.NDArray[Any]]:  # fmt: skip
        """``(outcomes, scores of a, scores of b, ids)`` over the ids both models scored, in id order."""
        left, right = self.models[a], self.models[b]
        ids, in_left, in_right = np.intersect1d(left.ids, right.ids, assume_unique=True, return_indices=True)
        return left.outcomes[in_left], left.scores[in_left], right.scores[in_right], ids

    def evaluate_pair(self, a: str, b: str, level: float = 0.95) -> PairEvaluation:
        """Switching from ``a`` to ``b`` over the ids both scored (:func:`mlsm.evaluation._stats.evaluate_pair`)."""
        y, s_a, s_b, ids = self.pair(a, b)
        return evaluate_pair(y, s_a, s_b, IdOrder(ids), level)


class _Rows:
    """A model's growing rows while the join runs: outcome positions and scores, and its late count."""

    __slots__ = ("late", "positions", "scores")

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.scores: list[float] = []
        self.late = 0


def join_outcomes(
    store: Store,
    *,
    as_of: str = "decision",
    key: str = "score",
    models: Sequence[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    mature_days: float | None = None,
    now: float | None = None,
) -> JoinedOutcomes:
    """Join every selected outcome of ``store`` to the score each model had for its id (see the module's rules)."""
    if as_of not in AS_OF:
        raise ValueError(f"invalid as_of {as_of!r}: valid values are {', '.join(AS_OF)}")
    if mature_days is not None and not mature_days >= 0:
        raise ValueError(f"mature_days must be a number of days >= 0, got {mature_days!r}")
    wanted = None if models is None else {_model_key(model) for model in models}
    cutoff = None if mature_days is None else (time.time() if now is None else now) - mature_days * _DAY
    decision, first = as_of == "decision", as_of == "first"
    rows: dict[str, _Rows] = {}
    ids: list[str] = []
    outcomes: list[int] = []
    too_young = 0
    isfinite = math.isfinite
    names: dict[str, dict[str, _Rows]] = {}  # name -> version -> that model's rows, looked up once per slot
    live: dict[_Rows, float | None] = {}  # the current outcome's result that counts so far: its score, or None
    after: set[_Rows] = set()  # models with a usable result written after the current outcome's decision
    current: str | None = None
    skipping = False
    at = 0.0
    position = -1
    with gc_paused():  # millions of short-lived dicts, no cycles: the collector would only slow the join down
        for id_value, value_of, decided, stamp, results in store.outcome_results(since, until):
            if id_value != current:
                if live:
                    _settle(position, live, after)
                current, at = id_value, decided
                skipping = cutoff is not None and at > cutoff
                if skipping:
                    too_young += 1
                    continue
                position = len(ids)
                ids.append(id_value)
                outcomes.append(value_of)
            elif skipping:
                continue
            if results is None:
                continue
            in_time = not decision or stamp <= at
            for name, versions in results.items():
                known = names.get(name)
                if known is None:
                    known = names[name] = {}
                for version, slot in versions.items():
                    model = known.get(version)
                    if model is None:
                        model = known[version] = rows.setdefault(f"{name}@{version}", _Rows())
                    value: float | None = None
                    if type(slot) is dict and "_error" not in slot:
                        number: Any = slot.get(key)
                        kind = type(number)
                        if (kind is float and isfinite(number)) or (kind is int and -1e308 < number < 1e308):
                            value = float(number)
                    if in_time:
                        if not first or model not in live:
                            live[model] = value
                    elif value is not None:
                        after.add(model)
                        if model not in live:
                            live[model] = None
        if live:
            _settle(position, live, after)
    return _result(as_of, key, ids, outcomes, too_young, rows, wanted)


def _settle(position: int, live: dict[_Rows, float | None], after: set[_Rows]) -> None:
    """Add one outcome's results (at ``position``) to the models' rows, then empty ``live`` and ``after``: a model
    in ``live`` with a score is scored, one without a score but in ``after`` is late."""
    for rows, value in live.items():
        if value is not None:
            rows.positions.append(position)
            rows.scores.append(value)
        elif rows in after:
            rows.late += 1
    live.clear()
    after.clear()


def _result(
    as_of: str,
    key: str,
    ids: list[str],
    outcomes: list[int],
    too_young: int,
    rows: dict[str, _Rows],
    wanted: set[str] | None,
) -> JoinedOutcomes:
    all_ids = np.array(ids, dtype=str) if ids else np.array([], dtype=str)
    all_outcomes = np.array(outcomes, dtype=np.int8) == 1
    chosen = sorted(wanted) if wanted is not None else sorted(m for m, r in rows.items() if r.scores or r.late)
    joined: dict[str, JoinedModel] = {}
    for model in chosen:
        found = rows.get(model) or _Rows()
        positions = np.array(found.positions, dtype=np.intp)
        joined[model] = JoinedModel(
            model=model,
            ids=all_ids[positions],
            scores=np.array(found.scores, dtype=np.float64),
            outcomes=all_outcomes[positions],
            not_scored=len(ids) - len(found.scores) - found.late,
            late=found.late,
        )
    return JoinedOutcomes(as_of=as_of, key=key, outcomes=len(ids), too_young=too_young, models=joined)


def _model_key(model: str) -> str:
    name, version = split_model(model)
    return f"{name}@{version}"
