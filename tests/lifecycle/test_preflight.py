"""Preflight: inputs generated from the field rules, the checks a model must pass, and what the report shows."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis.errors import NoSuchExample

from mlsm import Field, Model, SummaryModel
from mlsm.fields import FieldCheck, FieldProblem
from mlsm.lifecycle.preflight import basic_record, field_strategy, preflight_model, record_strategy

from ..conftest import CliResult

SPECS = [
    int,
    float,
    str,
    bool,
    Field(int, ge=0),
    Field(int, ge=-5, le=5),
    Field(int, ge=0.5, le=3.5),
    Field(float, ge=0, le=1),
    Field(float, required=False),
    Field(str, required=False),
    Field(str, choices=["A", "B", "C"]),
    Field(int, choices=[1, 2, 3], required=False),
    Field(bool, nullable=True),
    Field(str, default="unknown"),
]


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_every_generated_value_is_allowed_by_its_field(spec: Any) -> None:
    check = FieldCheck("x", spec)

    @settings(max_examples=150, database=None, suppress_health_check=list(HealthCheck))
    @given(field_strategy(spec))
    def allowed(value: Any) -> None:
        try:
            check.convert(value)
        except FieldProblem as exc:  # pragma: no cover - the failure this test looks for
            raise AssertionError(f"generated {value!r}, which {spec!r} refuses: {exc.problem}") from exc

    allowed()


def _finds(strategy: Any, condition: Any) -> bool:
    try:
        find(strategy, condition, settings=settings(max_examples=500, database=None))
    except NoSuchExample:
        return False
    return True


@pytest.mark.slow
def test_edge_values_are_generated() -> None:
    assert _finds(field_strategy(int), lambda v: v == 0)
    assert _finds(field_strategy(int), lambda v: v == 10**9)  # the realistic limit of an unbounded field
    assert _finds(field_strategy(Field(int, ge=3, le=9)), lambda v: v == 9)
    assert _finds(field_strategy(str), lambda v: len(v) >= 5000)
    assert _finds(field_strategy(str), lambda v: any(ord(c) > 0xFFFF for c in v))  # beyond the BMP (emoji)
    assert _finds(field_strategy(str), lambda v: "\n" in v)
    assert _finds(field_strategy(Field(str, required=False)), lambda v: v is None)
    assert _finds(field_strategy(Field(str, choices=["A", "B", "C"])), lambda v: v == "C")
    # a required field is never missing: not None, and no string that counts as missing ("", "nan", "  ")
    missing = ("", "nan", "none", "null")
    assert not _finds(field_strategy(str), lambda v: v is None or v.strip(" \t\n\r\f\v").lower() in missing)
    assert not _finds(field_strategy(float), lambda v: not math.isfinite(v))


@pytest.mark.slow
def test_unbounded_numbers_have_realistic_magnitudes_unless_extremes_are_asked_for() -> None:
    def realistic(v: float) -> bool:
        return v == 0 or 1e-9 <= abs(v) <= 1e9

    assert not _finds(field_strategy(int), lambda v: not realistic(v))
    assert not _finds(field_strategy(float), lambda v: not realistic(v))
    assert not _finds(field_strategy(Field(float, ge=0)), lambda v: not realistic(v))
    assert _finds(field_strategy(float), lambda v: v == -1e9)
    assert _finds(field_strategy(Field(int, ge=5 * 10**9)), lambda v: v == 6 * 10**9)  # 1e9 past its own bound
    # --extremes: the limits a run accepts, 2**31 boundaries, tiny and huge floats
    assert _finds(field_strategy(int, extremes=True), lambda v: v == 2**63 - 1)
    assert _finds(field_strategy(int, extremes=True), lambda v: v == -(2**31))
    assert _finds(field_strategy(float, extremes=True), lambda v: v != 0 and abs(v) < 1e-299)
    assert _finds(field_strategy(float, extremes=True), lambda v: abs(v) >= 1e300)
    assert _finds(record_strategy({"n": [float]}, extremes=True), lambda record: abs(record["n"]) > 1e300)


def test_declared_bounds_are_honoured_exactly_their_extremes_included() -> None:
    assert _finds(field_strategy(Field(int, ge=0, le=10**18)), lambda v: v == 10**18)
    assert _finds(field_strategy(Field(int, le=2**63 - 1)), lambda v: v == 2**63 - 1)
    assert _finds(field_strategy(Field(float, ge=-1e300, le=1e300)), lambda v: v == -1e300)
    assert _finds(field_strategy(Field(float, ge=0, le=1e-12)), lambda v: 0 < v <= 1e-12)
    assert not _finds(field_strategy(Field(int, ge=0, le=10**18)), lambda v: not 0 <= v <= 10**18)
    assert not _finds(field_strategy(Field(int, ge=0, le=10), extremes=True), lambda v: not 0 <= v <= 10)


def test_the_basic_example_is_the_original_values_moved_inside_bounds_and_choices() -> None:
    fields = {
        "n": [int],
        "x": [float],
        "s": [str],
        "b": [bool],
        "age": [Field(int, ge=18)],
        "p": [Field(float, ge=0, le=1)],
        "src": [Field(str, choices=["web", "partner"])],
        "k": [Field(int, choices=[3, 1])],
        "opt": [Field(str, required=False)],
        "shared": [Field(int, ge=0), Field(int, ge=5)],
    }
    assert basic_record(fields) == {
        "n": 1,
        "x": 1.2,
        "s": "lorem ipsum",
        "b": True,
        "age": 18,
        "p": 1.0,
        "src": "web",
        "k": 1,
        "opt": "lorem ipsum",
        "shared": 5,
    }
    assert basic_record({"n": [int], "when": [Field(object)]}) is None  # no basic value for an unknown type


@pytest.mark.slow
def test_optional_fields_are_sometimes_left_out_of_the_record() -> None:
    strategy = record_strategy({"a": [int], "b": [Field(float, required=False)]})
    assert _finds(strategy, lambda record: "b" not in record)
    assert _finds(strategy, lambda record: record.get("b") is None and "b" in record)
    assert not _finds(strategy, lambda record: "a" not in record)


def test_a_field_read_by_two_models_satisfies_both() -> None:
    strategy = record_strategy({"n": [Field(int, ge=0), Field(int, le=10)]})
    assert not _finds(strategy, lambda record: not 0 <= record["n"] <= 10)


def test_a_model_that_raises_on_allowed_input_fails_with_the_smallest_input_and_the_exception() -> None:
    def fragile(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"x": math.log(data["visits"]) / len(data["label"])}

    report = preflight_model(Model("fragile", {"visits": int, "label": str}, "1", fragile))
    assert not report.passed
    (failure,) = report.failures
    assert failure.check == "raises"
    assert "ValueError: math domain error (test_preflight.py:" in failure.message
    assert failure.input["visits"] == 0 and set(failure.input) == {"visits", "label"}  # shrunk to the edge
    assert "on input {" in report.first_failure


def test_a_sound_model_passes_and_reports_how_many_inputs_it_saw() -> None:
    def safe(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"x": 100 / data["n"], "label": data["label"][:10]}

    report = preflight_model(
        Model("safe", {"n": Field(int, ge=1), "label": Field(str, required=False, default="")}, "1", safe), examples=60
    )
    assert report.passed, report.first_failure
    assert report.examples == 60
    assert report.slowest is not None and report.slowest < 1.0


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ([1, 2], "expected a dict, got list"),
        ({"x": object()}, "not JSON-serializable"),
        ({"x": math.inf}, "numbers must be finite"),
        ({1: "x"}, "is not a string"),
    ],
)
def test_a_model_with_output_the_engine_cannot_store_fails(output: Any, problem: str) -> None:
    report = preflight_model(Model("m", {"n": int}, "1", lambda data, results: output), examples=5)
    assert report.failures[0].check == "output"
    assert problem in report.failures[0].message


def test_a_non_finite_number_on_extreme_inputs_is_found_with_extremes() -> None:
    def scale(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"x": data["v"] * 1e10}  # inf for floats beyond 1.8e298

    assert preflight_model(Model("m", {"v": float}, "1", scale)).passed  # realistic magnitudes by default
    report = preflight_model(Model("m", {"v": float}, "1", scale), extremes=True)
    assert "numbers must be finite" in report.first_failure
    assert abs(report.failures[0].input["v"]) > 1e100
    assert 0 < report.failing < report.examples and report.unstorable == report.failing


@pytest.mark.slow
def test_model_test_is_true_for_a_model_that_works_on_realistic_data() -> None:
    model = Model(
        name="t",
        fields={"f": float, "b": bool},
        version="1",
        fcn=lambda data, results: {"v": data["f"] * 2 if data["b"] else 0},
    )
    assert model.test() is True
    assert model.test(examples=30) is True  # the original signature, positionally too
    assert Model("t", {"f": float, "b": bool}, "1", model.fcn).test(50) is True
    assert model.test(extremes=True) is False  # -1.8e308 * 2 overflows


def test_every_generated_input_is_tried_and_the_failing_ones_counted() -> None:
    def partners(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        if data["source"] == "partner":
            raise ValueError("cannot score partner leads")
        return {"score": 0.5}

    fields = {"source": Field(str, choices=["web", "partner", "ad"]), "visits": Field(int, ge=0)}
    report = preflight_model(Model("m", fields, "1", partners, status="active"), examples=60)
    assert report.examples == 60  # not stopped at the first failure
    assert 0 < report.failing < 60
    assert report.failures[0].check == "raises" and "cannot score partner leads" in report.failures[0].message
    assert report.failures[0].input == {"source": "partner", "visits": 0}  # shrunk
    assert report.basic_example == {"source": "web", "visits": 1} and report.basic_failure is None
    assert report.blocking == []  # an active model failing on some inputs serves: its failures are reported
    assert report.to_dict() == {
        "passed": False,
        "blocking": False,
        "examples": 60,
        "failing": report.failing,
        "first_failure": report.first_failure,
        "check": "raises",
    }


@pytest.mark.parametrize("status", ["active", "draft"])
def test_failing_on_the_basic_example_blocks_an_active_model_only(status: str) -> None:
    def no_web(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        if data["source"] == "web":
            raise ValueError("web leads are not scored yet")
        return {}

    model = Model("m", {"source": Field(str, choices=["web", "partner", "ad"])}, "1", no_web, status=status)
    report = preflight_model(model, examples=30)
    basic = report.basic_failure
    assert basic is not None and basic.input == {"source": "web"} and report.failures[0] is basic
    assert "on its basic example {" in report.first_failure
    assert 0 < report.failing < report.examples
    assert report.blocking == (["its basic example fails"] if status == "active" else [])


def test_failing_on_every_input_or_mostly_unstorable_output_blocks_an_active_model() -> None:
    def only_lorem(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        if data["s"] != "lorem ipsum":
            raise ValueError("unexpected text")
        return {}

    report = preflight_model(Model("m", {"s": str}, "1", only_lorem, status="active"), examples=40)
    assert report.basic_failure is None and report.failing == report.examples == 40
    assert report.blocking == ["it fails on every generated input (40 of 40)"]

    def mostly_inf(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"x": 1.0 if data["n"] <= 1 else math.inf}

    report = preflight_model(Model("m", {"n": Field(int, ge=0, le=9)}, "1", mostly_inf, status="active"))
    assert report.basic_failure is None and report.examples // 2 < report.unstorable < report.examples
    (reason,) = report.blocking
    unstorable = f"{report.unstorable} of {report.examples} generated inputs"
    assert reason == f"its output cannot be stored on {unstorable} (more than half)"
    assert preflight_model(Model("m", {"n": Field(int, ge=0, le=9)}, "1", mostly_inf)).blocking == []  # a draft


def test_an_active_model_over_its_time_budget_on_the_basic_example_is_blocked() -> None:
    def slow_on_lorem(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        if data["s"] == "lorem ipsum":
            time.sleep(0.05)
        return {}

    report = preflight_model(Model("m", {"s": str}, "1", slow_on_lorem, status="active"), examples=10, time_budget=0.01)
    basic = report.basic_failure
    assert basic is not None and basic.check == "time" and "over the budget of 10 ms" in basic.message
    assert report.blocking == ["over its time budget on its basic example"]


@pytest.mark.slow
def test_batch_models_are_called_with_frames_and_must_return_one_row_per_row() -> None:
    seen: list[int] = []

    def short(frame: pd.DataFrame) -> pd.DataFrame:
        seen.append(len(frame))
        return pd.DataFrame({"score": [0.5] * min(len(frame), 2)})

    report = preflight_model(Model("b", {"n": int}, "1", short, batch=True))
    assert not report.passed
    assert "one per input row" in report.failures[0].message
    assert len(report.failures[0].input) == 3  # the smallest batch that breaks it
    assert 1 in seen and max(seen) >= 3

    def good(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"score": frame["n"].fillna(0).clip(0, 1).astype(float)})

    assert preflight_model(Model("b", {"n": Field(int, required=False)}, "1", good, batch=True)).passed


def test_a_summary_model_runs_after_its_upstream_models_and_must_cope_with_their_errors() -> None:
    base = Model("base", {"n": int}, "1", lambda data, results: {"score": data["n"] % 7})

    def trusting(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"best": results["base"]["1"]["score"]}  # KeyError when base failed

    def careful(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"best": results["base"]["1"].get("score")}

    needs = [{"name": "base", "version": "1"}]
    report = preflight_model(SummaryModel("pick", needs, "1", trusting), upstream=[base])
    assert not report.passed and "KeyError" in report.failures[0].message
    assert report.failures[0].input["<upstream errors>"] == ["base@1"]
    assert preflight_model(SummaryModel("pick", needs, "1", careful), upstream=[base]).passed


def test_a_summary_model_sees_real_upstream_results() -> None:
    base = Model("base", {"n": Field(int, ge=0, le=5)}, "1", lambda data, results: {"score": data["n"]})
    seen: set[Any] = set()

    def spy(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        seen.add(results["base"]["1"].get("score", "error"))
        return {}

    preflight_model(SummaryModel("s", [{"name": "base", "version": "1"}], "1", spy), upstream=[base])
    assert {0, 5, "error"} <= seen


def test_a_model_over_its_time_budget_fails() -> None:
    def slow(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.03)
        return {}

    report = preflight_model(Model("slow", {"n": int}, "1", slow), examples=4, time_budget=0.01)
    assert [failure.check for failure in report.failures] == ["time"]
    assert "over the budget of 10 ms" in report.failures[0].message
    assert report.failing == report.examples == 4
    assert preflight_model(Model("slow", {"n": int}, "1", slow), examples=4, time_budget=0.5).passed


@pytest.mark.slow
def test_a_model_that_hangs_is_stopped() -> None:
    def hangs(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        if data["n"] == 7:
            time.sleep(60)
        return {}

    started = time.monotonic()
    report = preflight_model(Model("hangs", {"n": Field(int, ge=0, le=10)}, "1", hangs), time_budget=0.05)
    assert time.monotonic() - started < 10
    assert report.failures[0].check == "time" and "stopped" in report.failures[0].message
    assert report.failures[0].input == {"n": 7}


def test_the_same_seed_gives_the_same_report() -> None:
    def picky(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        if data["n"] > 1000 and data["s"] and data["s"][0].isupper():
            raise ValueError("picky")
        return {}

    model = Model("m", {"n": int, "s": str}, "1", picky)
    first, second = preflight_model(model, seed=3), preflight_model(model, seed=3)
    assert (first.examples, first.first_failure) == (second.examples, second.first_failure)


def test_model_test_uses_the_same_machinery() -> None:
    def shout(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
        return {"x": data["s"].upper()}

    assert not Model("m", {"s": Field(str, required=False)}, "1", shout).test()  # None.upper()
    assert Model("m", {"s": str}, "1", shout).test(examples=30)


# -- the mlsm test command -----------------------------------------------------------------------------------------

SET = """
    from mlsm import Field, Model, SummaryModel

    def visits_per_day(data, results):
        return {"rate": data["visits"] / data["days"]}

    def noisy(data, results):
        raise ValueError("bad\\x01byte " + data["source"][:3])

    def pick(data, results):
        return {"best": results["rate"]["1"].get("rate")}

    MODELS = [
        Model("rate", {"visits": Field(int, ge=0), "days": Field(int, ge=1)}, "1", visits_per_day, status="active"),
        Model("divide", {"visits": int, "days": int}, "1", visits_per_day),
        Model("noisy", {"source": Field(str, choices=["web", "ad"])}, "1", noisy, status="active"),
        SummaryModel("pick", [{"name": "rate", "version": "1"}], "1", pick),
    ]
"""


def test_the_test_command_prints_a_table_the_failures_and_exits_1(
    cli: Callable[..., CliResult], write_models: Callable[..., Path]
) -> None:
    result = cli("test", write_models(SET), "--examples", "40")
    assert result.code == 1
    table, *details = result.out.split("\n\n")
    lines = table.splitlines()
    assert lines[0].split() == ["MODEL", "STATUS", "RESULT", "EXAMPLES", "FAILING", "SLOWEST", "GOLDEN", "DETAIL"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["rate@1"].split()[:5] == ["rate@1", "active", "pass", "40", "0"]
    # a draft failing on some inputs would serve (reported); an active model failing its basic example would not
    assert rows["divide@1"].split()[:4] == ["divide@1", "draft", "FAIL", "(reported)"]
    assert "ZeroDivisionError:" in rows["divide@1"]
    assert rows["noisy@1"].split()[:5] == ["noisy@1", "active", "FAIL", "(blocks", "deploy)"]
    examples, failing = rows["noisy@1"].split()[5:7]
    assert failing == examples != "0"  # every input fails (it has few to try: two choices)
    assert rows["pick@1"].split()[2] == "pass"
    text = "\n\n".join(details)
    assert "divide@1 FAILED (" in text and "reported: mlsm serve would serve it" in text
    assert 'smallest failing input: {"visits": 0, "days": 0}' in text
    assert "noisy@1 FAILED" in text and "raises: ValueError: bad\x01byte web" in text
    blocks = "blocks deploy: mlsm serve refuses the set: its basic example fails; it fails on every generated input"
    assert blocks in text
    assert 'basic example: {"source": "web"}' in text
    assert text.rstrip().endswith("2 of 4 models passed; 1 would block a deploy (mlsm serve refuses them)")


def test_the_junit_report_has_one_case_per_model_and_the_failure_detail(
    cli: Callable[..., CliResult], write_models: Callable[..., Path], tmp_path: Path
) -> None:
    import xml.etree.ElementTree as ET

    result = cli("test", write_models(SET), "--examples", "20", "--junit-xml", "reports/mlsm.xml")
    assert result.code == 1
    suite = ET.parse(tmp_path / "reports" / "mlsm.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("4", "2")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"rate@1 preflight", "divide@1 preflight", "noisy@1 preflight", "pick@1 preflight"}
    assert cases["rate@1 preflight"].find("failure") is None
    failure = cases["divide@1 preflight"].find("failure")
    assert failure is not None and "ZeroDivisionError" in (failure.get("message") or "")
    assert 'smallest failing input: {"visits": 0, "days": 0}' in (failure.text or "")
    noisy = cases["noisy@1 preflight"].find("failure")
    assert noisy is not None and "bad\\x01byte" in (noisy.text or "")  # not XML-safe, so escaped
    assert "blocks deploy" in (noisy.text or "") and "reported: " in (failure.text or "")  # both fail the build
    assert cases["rate@1 preflight"].get("classname", "").endswith("models.py")


def test_the_test_command_time_budget_and_seed_options(
    cli: Callable[..., CliResult], write_models: Callable[..., Path]
) -> None:
    path = write_models(
        """
        import time
        from mlsm import Model
        def slow(data, results):
            time.sleep(0.02)
            return {}
        MODELS = [Model("slow", {"n": int}, "1", slow)]
        """
    )
    assert cli("test", path, "--examples", "3", "--time-budget", "0.5").code == 0
    result = cli("test", path, "--examples", "3", "--time-budget", "0.005", "--seed", "9")
    assert result.code == 1 and "over the budget of 5 ms" in result.out
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it, with a usage line
        cli("test", path, "--time-budget", "0")
    assert exit_info.value.code == 2


def test_the_test_command_finds_overflows_only_with_extremes(
    cli: Callable[..., CliResult], write_models: Callable[..., Path]
) -> None:
    path = write_models(
        """
        from mlsm import Model
        def double(data, results):
            return {"v": data["f"] * 2 if data["b"] else 0}
        MODELS = [Model("t", {"f": float, "b": bool}, "1", double)]
        """
    )
    assert cli("test", path).code == 0
    result = cli("test", path, "--extremes")
    assert result.code == 1
    assert "t@1 FAILED" in result.out and "numbers must be finite" in result.out
    assert "FAIL (reported)" in result.out  # a draft
