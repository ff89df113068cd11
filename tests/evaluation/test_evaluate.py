"""``evaluate``: models judged against outcomes, pairs compared on the leads both scored, and the verdict."""

from __future__ import annotations

import json

import numpy as np
from sklearn.metrics import roc_auc_score

from mlsm.evaluation.evaluate import evaluate
from mlsm.evaluation.join import JoinedModel


def _leads(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    outcomes = rng.random(n) < 1 / (1 + np.exp(-2 * truth))
    ids = np.array([f"lead-{i}" for i in range(n)], dtype=object)
    return ids, truth, outcomes


def _model(
    name: str, ids: np.ndarray, scores: np.ndarray, outcomes: np.ndarray, not_scored: int = 0, late: int = 0
) -> JoinedModel:
    return JoinedModel(name, ids, scores.astype(np.float64), outcomes.astype(np.bool_), not_scored, late)


def test_each_model_is_judged_on_its_own_scored_leads_and_agrees_with_scikit_learn() -> None:
    ids, truth, outcomes = _leads(3000)
    rng = np.random.default_rng(1)
    good = 1 / (1 + np.exp(-(truth + rng.normal(scale=0.5, size=truth.size))))
    weak = 1 / (1 + np.exp(-(truth + rng.normal(scale=2.0, size=truth.size))))
    part = slice(0, 2000)  # the challenger scored only the first 2,000 leads
    result = evaluate(
        [
            _model("gbm@1.0", ids, weak, outcomes, not_scored=0),
            _model("gbm@2.0", ids[part], good[part], outcomes[part], not_scored=1000, late=3),
        ],
        as_of="decision",
        outcomes=3000,
    )
    data = json.loads(json.dumps(result.to_dict()))
    first, second = data["models"]
    assert first["model"] == "gbm@1.0" and first["n"] == 3000
    assert abs(first["auc"] - roc_auc_score(outcomes, weak)) < 1e-12
    assert second["n"] == 2000 and second["not_scored"] == 1000 and second["late"] == 3
    assert abs(second["auc"] - roc_auc_score(outcomes[part], good[part])) < 1e-12
    assert [d["decile"] for d in first["deciles"]] == list(range(1, 11))
    assert sum(d["n"] for d in first["deciles"]) == 3000
    assert first["brier"] is not None and first["ece"] is not None

    (pair,) = data["comparisons"]
    assert (pair["a"], pair["b"], pair["n"]) == ("gbm@1.0", "gbm@2.0", 2000)
    assert abs(pair["auc_a"] - roc_auc_score(outcomes[part], weak[part])) < 1e-12
    assert pair["auc_diff"] > 0 and pair["p_value"] < 0.05
    assert pair["swap"]["entering"]["n"] == pair["swap"]["leaving"]["n"]
    assert pair["verdict"].startswith("gbm@2.0 ranks better than gbm@1.0: AUC +")
    assert "on 2,000 leads" in pair["verdict"]

    text = result.table()
    assert text.splitlines()[-1] == pair["verdict"]
    assert "gbm@2.0: deciles (1 = top 10% by score)" in text


def test_a_worse_challenger_is_named_second_and_equal_models_are_no_difference() -> None:
    ids, truth, outcomes = _leads(2000, seed=3)
    noisy = truth + np.random.default_rng(5).normal(scale=3.0, size=truth.size)
    worse = evaluate(
        [_model("a@1", ids, truth, outcomes), _model("b@1", ids, noisy, outcomes)], as_of="first", outcomes=2000
    )
    assert worse.comparisons[0].to_dict()["verdict"].startswith("a@1 ranks better than b@1: AUC +")

    same = evaluate(
        [_model("a@1", ids, truth, outcomes), _model("b@1", ids, truth * 2, outcomes)], as_of="decision", outcomes=2000
    )
    verdict = same.comparisons[0].to_dict()["verdict"]
    assert verdict.startswith("no significant difference between b@1 and a@1: AUC +0.000")
    # scores outside [0, 1] are not probabilities: no Brier, log loss or calibration
    assert same.to_dict()["models"][1]["brier"] is None and same.to_dict()["models"][1]["ece"] is None


def test_models_without_scored_outcomes_are_left_out_and_pairs_need_common_leads() -> None:
    ids, truth, outcomes = _leads(400, seed=11)
    empty = np.array([], dtype=object)
    result = evaluate(
        [
            _model("a@1", ids[:200], truth[:200], outcomes[:200]),
            _model("b@1", ids[200:], truth[200:], outcomes[200:]),
            JoinedModel("c@1", empty, np.array([]), np.array([], dtype=np.bool_), not_scored=400, late=0),
        ],
        as_of="latest",
        outcomes=400,
    )
    assert [m["model"] for m in result.to_dict()["models"]] == ["a@1", "b@1"]
    assert result.comparisons == ()
    assert "no model" not in result.table()
    nothing = evaluate([], as_of="decision", outcomes=0)
    assert nothing.table().endswith("no model has a numeric score for these outcomes")


def test_a_tiny_but_real_difference_shows_the_digits_it_needs() -> None:
    from mlsm.evaluation._stats import PairedDelong, PairEvaluation, SwapGroup, SwapSet
    from mlsm.evaluation.evaluate import PairResult, verdict

    group = SwapGroup(0, 0, None)
    test = PairedDelong(0.8, 0.80004, 0.00004, 1e-10, 4.0, 0.00006)
    pair = PairResult("a@1", "b@1", PairEvaluation(5000, test, (0.00002, 0.00006), SwapSet(group, group, group), None))
    assert verdict(pair) == (
        "b@1 ranks better than a@1: AUC +0.000040 (95% CI +0.000020 to +0.000060), p < 0.001, on 5,000 leads"
    )


def test_pairs_are_the_same_whether_or_not_the_ids_come_in_id_order() -> None:
    ids, truth, outcomes = _leads(1200, seed=13)
    rng = np.random.default_rng(2)
    other = truth + rng.normal(scale=1.0, size=truth.size)
    keep_a, keep_b = rng.random(ids.size) < 0.8, rng.random(ids.size) < 0.7

    def pair(order: np.ndarray) -> dict:
        a = _model(
            "a@1", ids[order][keep_a[order]].astype(str), truth[order][keep_a[order]], outcomes[order][keep_a[order]]
        )
        b = _model(
            "b@1", ids[order][keep_b[order]].astype(str), other[order][keep_b[order]], outcomes[order][keep_b[order]]
        )
        result = evaluate([a, b], as_of="decision", outcomes=ids.size)
        return {**result.comparisons[0].to_dict(), "models": [m["auc"] for m in result.to_dict()["models"]]}

    in_id_order = pair(np.argsort(ids.astype(str), kind="stable"))
    as_written = pair(np.arange(ids.size))
    assert in_id_order["n"] == int(np.count_nonzero(keep_a & keep_b))
    assert in_id_order == as_written
