"""Field rules: what converts, what is missing, what is a problem, on both paths (one value, one column)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsm import Field, ModelDefinitionError
from mlsm.fields import FieldCheck, FieldProblem


def convert(spec: Any, value: Any) -> Any:
    return FieldCheck("f", spec).convert(value)


def problem(spec: Any, value: Any) -> str:
    with pytest.raises(FieldProblem) as info:
        convert(spec, value)
    return info.value.problem


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        (int, "12", 12),
        (int, " 12 ", 12),
        (int, "12.0", 12),
        (int, "1e3", 1000),
        (int, "-7", -7),
        (int, 12, 12),
        (int, 12.0, 12),
        (float, "1.5", 1.5),
        (float, "2", 2.0),
        (float, 3, 3.0),
        (float, ".5", 0.5),
        (str, "Google", "Google"),
        (str, 42, "42"),
        (bool, "true", True),
        (bool, "YES", True),
        (bool, "No", False),
        (bool, "0", False),
        (bool, "1", True),
        (bool, 1, True),
        (bool, False, False),
    ],
)
def test_values_from_files_and_json_convert_to_the_declared_type(spec: Any, raw: Any, expected: Any) -> None:
    value = convert(spec, raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("raw", ["", "   ", None, math.nan, "NaN", "nan", "null", "None"])
def test_empty_nan_and_none_count_as_missing(raw: Any) -> None:
    assert problem(int, raw) == "missing (required)"
    assert convert(Field(int, required=False), raw) is None
    assert convert(Field(int, nullable=True), raw) is None
    assert convert(Field(int, default=0), raw) == 0


@pytest.mark.parametrize(
    ("spec", "raw", "message"),
    [
        (int, "abc", "expected int, got 'abc'"),
        (int, "1.5", "expected int, got '1.5'"),
        (int, True, "expected int, got True"),
        (int, "1_000", "expected int, got '1_000'"),
        (float, "inf", "expected float, got 'inf'"),
        (float, math.inf, "expected float, got inf"),
        (float, "1.2.3", "expected float, got '1.2.3'"),
        (bool, "maybe", "expected bool, got 'maybe'"),
        (bool, 2, "expected bool, got 2"),
        (str, ["a"], "expected str, got ['a']"),
        (Field(int, ge=0), "-3", "must be >= 0, got -3"),
        (Field(float, le=1.0), 1.5, "must be <= 1.0, got 1.5"),
        (Field(str, choices=["A", "B"]), "C", "must be one of 'A', 'B', got 'C'"),
    ],
)
def test_invalid_values_name_the_expected_type_and_the_value(spec: Any, raw: Any, message: str) -> None:
    assert problem(spec, raw) == message


def test_values_in_messages_are_cut_at_80_characters() -> None:
    text = problem(int, "x" * 500)
    shown = text.split("got ", 1)[1]
    assert len(shown) == 80 and shown.endswith("...")


def test_other_classes_check_instances_unchanged() -> None:
    assert convert(list, [1, 2]) == [1, 2]
    assert problem(dict, "x") == "expected dict, got 'x'"


def test_bad_field_specs_are_definition_errors() -> None:
    with pytest.raises(ModelDefinitionError, match="type must be a class"):
        FieldCheck("x", "int")
    with pytest.raises(ModelDefinitionError, match="ge/le apply to numbers"):
        FieldCheck("x", Field(str, ge=1))


def test_field_is_plain_data_with_a_readable_repr() -> None:
    f = Field(int, ge=0, required=False)
    assert (f.type, f.ge, f.required) == (int, 0, False)
    assert repr(f) == "Field(int, required=False, ge=0)"
    assert f == Field(int, ge=0, required=False)
    assert f.describe() == "int >=0?"


# -- the column path agrees with the per-value path -----------------------------------------------------------------

SPECS = [
    int,
    float,
    str,
    bool,
    Field(int, ge=0, le=100),
    Field(float, ge=-1.0, required=False),
    Field(str, choices=["a", "b", "Google"], required=False),
    Field(int, default=-1),
    Field(bool, nullable=True),
]

text_values = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "nan",
            "NULL",
            "12",
            " 12 ",
            "12.0",
            "1e3",
            "-4",
            "1.5",
            ".5",
            "abc",
            "true",
            "No",
            "0",
            "1",
            "inf",
            "1_0",
            "+3",
            "1e400",
            "Google",
            "a",
            "99999999999999999999",
            "0\x1f",  # separators Python counts as whitespace, Arrow does not
            "\x1c7",
            "٣",  # a digit to Python, not to Arrow
            "1\u00a0",
            "\u2003true",
            "NAN\x0b",
            "İ",
        ]
    ),
    st.text(max_size=8),
)


def _column_outcome(spec: Any, column: Any, n: int) -> list[tuple[str, Any]]:
    result = FieldCheck("f", spec).convert_column(column, n)
    values = result.py_values()
    return [("problem", result.problems[i]) if i in result.problems else ("ok", values[i]) for i in range(n)]


def _value_outcome(spec: Any, raw: Any) -> tuple[str, Any]:
    try:
        return ("ok", convert(spec, raw))
    except FieldProblem as exc:
        return ("problem", exc.problem)


def _same(a: list[tuple[str, Any]], b: list[tuple[str, Any]]) -> bool:
    def norm(item: tuple[str, Any]) -> tuple[str, Any]:
        kind, value = item
        if isinstance(value, float) and value.is_integer():
            return kind, (type(value).__name__, value)
        return kind, (type(value).__name__, value)

    return [norm(x) for x in a] == [norm(x) for x in b]


@settings(max_examples=150, deadline=None)
@given(spec=st.sampled_from(SPECS), raws=st.lists(text_values, min_size=1, max_size=12))
def test_arrow_string_columns_convert_exactly_like_single_values(spec: Any, raws: list[str]) -> None:
    expected = [_value_outcome(spec, raw) for raw in raws]
    assert _same(_column_outcome(spec, pa.array(raws, pa.string()), len(raws)), expected)


json_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True), text_values
)


@settings(max_examples=150, deadline=None)
@given(spec=st.sampled_from(SPECS), raws=st.lists(json_values, min_size=1, max_size=12))
def test_python_list_columns_convert_exactly_like_single_values(spec: Any, raws: list[Any]) -> None:
    expected = [_value_outcome(spec, raw) for raw in raws]
    assert _same(_column_outcome(spec, raws, len(raws)), expected)


@pytest.mark.parametrize(
    ("array", "spec"),
    [
        (pa.array([1, None, 3], pa.int64()), Field(int, required=False)),
        (pa.array([1.0, None, 2.5, math.nan], pa.float64()), Field(float, required=False)),
        (pa.array([1.0, 2.5, None], pa.float64()), Field(int, required=False)),
        (pa.array([True, None, False], pa.bool_()), Field(bool, required=False)),
        (pa.array([5, -1, None], pa.int32()), Field(int, ge=0)),
    ],
)
def test_typed_parquet_columns_convert_exactly_like_single_values(array: pa.Array, spec: Any) -> None:
    expected = [_value_outcome(spec, raw) for raw in array.to_pylist()]
    assert _same(_column_outcome(spec, array, len(array)), expected)


def test_absent_column_is_missing_for_every_row() -> None:
    result = FieldCheck("f", int).convert_column(None, 3)
    assert result.problems == {0: "missing (required)", 1: "missing (required)", 2: "missing (required)"}
    optional = FieldCheck("f", Field(int, default=5)).convert_column(None, 2)
    assert optional.py_values() == [5, 5] and not optional.problems


def test_converted_columns_are_typed_numpy_arrays() -> None:
    result = FieldCheck("f", int).convert_column(pa.array(["1", "2"]), 2)
    assert result.values.dtype == np.int64
    floats = FieldCheck("f", float).convert_column(pa.array(["1", "2.5"]), 2)
    assert floats.values.dtype == np.float64


def test_a_check_tells_its_kind_range_and_the_choices_kept_as_they_are() -> None:
    assert FieldCheck("f", int).kind is int and FieldCheck("f", Field(dict)).kind is object
    assert FieldCheck("f", int).value_range() == (-(2**63), 2**63 - 1)
    assert FieldCheck("f", Field(float, ge=0.5)).value_range() == (0.5, math.inf)
    choices = FieldCheck("f", Field(str, choices=["A", " nan ", "", 3, "\u00a0"]))
    assert choices.unchanged_choices() == {"A", "\u00a0"}
    assert all(choices.convert(value) == value for value in choices.unchanged_choices())
    assert FieldCheck("f", Field(int, choices=[1, 2])).unchanged_choices() == set()
