"""The point-in-time join on a real SQLite store: which score counts (decision, first, latest), not_scored, late,
the since/until window and mature_days."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlsm.documents import Documents, make_document
from mlsm.evaluation._stats import auc
from mlsm.evaluation.join import join_outcomes
from mlsm.stores import Store, open_store
from mlsm.stores.outcomes import Outcome


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with open_store(f"sqlite:///{tmp_path / 'results.db'}") as opened:
        yield opened


def write(store: Store, timestamp: int, **slots: dict[str, Any]) -> None:
    """One document per id at ``timestamp``: ``slots[id]`` maps "name@version" to the slot."""
    docs, ids = [], []
    for id_value, results in slots.items():
        nested: dict[str, Any] = {}
        for model, slot in results.items():
            name, version = model.split("@")
            nested.setdefault(name, {})[version] = slot
        docs.append(make_document("lead", id_value, nested, run=f"r{timestamp}", timestamp=timestamp))
        ids.append(id_value)
    store.write(Documents("lead", ids, docs, run=f"r{timestamp}"))


def outcome(id_value: str, value: int, at: float) -> Outcome:
    return Outcome(id_value, value, at, loaded_at=at)


def by_id(joined: Any, model: str) -> dict[str, float]:
    rows = joined.models[model]
    return dict(zip(rows.ids.tolist(), rows.scores.tolist()))


def test_the_score_live_at_the_decision_counts_not_a_later_one(store: Store) -> None:
    write(store, 100, a={"m@1": {"score": 0.1}}, b={"m@1": {"score": 0.2}})
    write(store, 200, a={"m@1": {"score": 0.3}})
    write(store, 300, a={"m@1": {"score": 0.5}}, b={"m@1": {"score": 0.6}})
    store.write_outcomes([outcome("a", 1, 250), outcome("b", 0, 150)])
    assert by_id(join_outcomes(store), "m@1") == {"a": 0.3, "b": 0.2}
    assert by_id(join_outcomes(store, as_of="first"), "m@1") == {"a": 0.1, "b": 0.2}
    assert by_id(join_outcomes(store, as_of="latest"), "m@1") == {"a": 0.5, "b": 0.6}
    joined = join_outcomes(store)
    assert joined.outcomes == 2 and joined.as_of == "decision"
    assert joined.models["m@1"].outcomes.tolist() == [True, False]


def test_a_decision_at_the_second_of_the_score_counts_it_in_time(store: Store) -> None:
    write(store, 100, a={"m@1": {"score": 0.4}})
    store.write_outcomes([outcome("a", 1, 100.0)])
    assert by_id(join_outcomes(store), "m@1") == {"a": 0.4}


def test_documents_without_the_model_are_passed_over(store: Store) -> None:
    write(store, 100, a={"m@1": {"score": 0.4}})
    write(store, 200, a={"other@2": {"score": 0.9}})
    store.write_outcomes([outcome("a", 1, 300)])
    joined = join_outcomes(store)
    assert by_id(joined, "m@1") == {"a": 0.4} and by_id(joined, "other@2") == {"a": 0.9}
    assert list(joined.models) == ["m@1", "other@2"]


def test_late_scores_are_excluded_and_counted_apart_from_not_scored(store: Store) -> None:
    write(store, 100, a={"m@1": {"score": 0.4}})
    write(store, 500, b={"m@1": {"score": 0.7}}, c={"m@1": {"_error": "boom", "_status": "active"}})
    store.write_outcomes([outcome("a", 1, 200), outcome("b", 0, 200), outcome("c", 1, 600), outcome("d", 0, 200)])
    rows = join_outcomes(store).models["m@1"]
    assert rows.ids.tolist() == ["a"]
    assert (rows.late, rows.not_scored) == (1, 2)  # b scored after its decision; c an error slot, d never scored
    latest = join_outcomes(store, as_of="latest").models["m@1"]
    assert latest.ids.tolist() == ["a", "b"] and (latest.late, latest.not_scored) == (0, 2)


def test_an_error_live_at_the_decision_is_not_scored_even_after_an_older_score(store: Store) -> None:
    write(store, 100, a={"m@1": {"score": 0.4}})
    write(store, 200, a={"m@1": {"_error": "boom"}})
    write(store, 400, a={"m@1": {"score": 0.6}})
    store.write_outcomes([outcome("a", 1, 300)])
    rows = join_outcomes(store).models["m@1"]
    assert rows.n == 0 and (rows.not_scored, rows.late) == (0, 1)  # a usable score came after: late


def test_non_numeric_or_missing_keys_are_not_scores(store: Store) -> None:
    write(store, 100, a={"m@1": {"score": "high"}}, b={"m@1": {"score": True}}, c={"m@1": {"p": 0.3}})
    write(store, 100, d={"m@1": {"score": 2}})
    store.write_outcomes([outcome(i, 1, 200) for i in "abcd"])
    assert by_id(join_outcomes(store), "m@1") == {"d": 2.0}
    assert by_id(join_outcomes(store, key="p"), "m@1") == {"c": 0.3}
    assert join_outcomes(store).models["m@1"].not_scored == 3


def test_models_can_be_chosen_even_without_scores(store: Store) -> None:
    write(store, 100, a={"m@1": {"score": 0.4}, "n@2": {"score": 0.1}})
    store.write_outcomes([outcome("a", 1, 200)])
    joined = join_outcomes(store, models=["n@2", "zz@9"])
    assert list(joined.models) == ["n@2", "zz@9"]
    assert joined.models["zz@9"].not_scored == 1 and joined.models["zz@9"].n == 0


def test_since_until_select_by_decision_time_half_open(store: Store) -> None:
    write(store, 100, a={"m@1": {"score": 0.1}}, b={"m@1": {"score": 0.2}}, c={"m@1": {"score": 0.3}})
    store.write_outcomes([outcome("a", 1, 200), outcome("b", 0, 300), outcome("c", 1, 400)])
    joined = join_outcomes(store, since=300, until=400)
    assert joined.outcomes == 1 and by_id(joined, "m@1") == {"b": 0.2}


def test_mature_days_judges_only_old_enough_decisions(store: Store) -> None:
    now = 100 * 86_400.0
    write(store, 1000, a={"m@1": {"score": 0.1}}, b={"m@1": {"score": 0.2}})
    store.write_outcomes([outcome("a", 1, now - 10 * 86_400), outcome("b", 0, now - 86_400)])
    joined = join_outcomes(store, mature_days=7, now=now)
    assert (joined.outcomes, joined.too_young) == (1, 1)
    assert by_id(joined, "m@1") == {"a": 0.1}


def test_the_join_feeds_the_statistics_directly(store: Store) -> None:
    rng = np.random.default_rng(3)
    ids = [f"lead{i:03d}" for i in range(200)]
    y = rng.integers(0, 2, len(ids))
    a = y * 0.3 + rng.random(len(ids))
    b = y * 0.6 + rng.random(len(ids))
    write(store, 100, **{i: {"a@1": {"score": float(sa)}, "b@1": {"score": float(sb)}} for i, sa, sb in zip(ids, a, b)})
    store.write_outcomes([outcome(i, int(v), 200) for i, v in zip(ids, y)])
    joined = join_outcomes(store)
    evaluation = joined.models["a@1"].evaluate()
    assert evaluation.n == 200 and evaluation.auc == pytest.approx(auc(y, a))
    pair = joined.evaluate_pair("a@1", "b@1")
    assert pair.n == 200 and pair.test.diff == pytest.approx(auc(y, b) - auc(y, a))


def test_an_outcome_replaced_by_a_later_load_is_joined_by_its_new_time(store: Store) -> None:
    write(store, 100, a={"m@1": {"score": 0.1}})
    write(store, 300, a={"m@1": {"score": 0.9}})
    store.write_outcomes([outcome("a", 0, 200)])
    store.write_outcomes([outcome("a", 1, 400)])
    rows = join_outcomes(store).models["m@1"]
    assert rows.scores.tolist() == [0.9] and rows.outcomes.tolist() == [True]


def test_invalid_options_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="as_of"):
        join_outcomes(store, as_of="now")
    with pytest.raises(ValueError, match="mature_days"):
        join_outcomes(store, mature_days=-1)
