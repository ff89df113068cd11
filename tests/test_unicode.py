"""The rule for text that is not valid Unicode: one function the readers and the service call."""

from __future__ import annotations

import json

from mlsm.unicode import record_text_problem, text_problem


def test_valid_text_and_other_values_have_no_problem() -> None:
    for value in ["", "plain", "café", "\U0001f600", "\ufffd", None, 1, 2.5, True, [1, "x"], {"k": "v"}]:
        assert text_problem(value) is None


def test_a_lone_surrogate_is_named_wherever_it_is() -> None:
    assert text_problem("a\udc00") == "lone surrogate \\udc00"
    assert text_problem(json.loads('"\\ud800"')) == "lone surrogate \\ud800"
    assert text_problem(["ok", {"k": ("x", "\udfff")}]) == "lone surrogate \\udfff"
    assert text_problem({"\udc80": 1}) == "lone surrogate \\udc80"  # a key is text too
    deep: list[object] = ["\udc01"]
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = [deep]
    assert text_problem(deep) == "lone surrogate \\udc01"


def test_a_record_names_its_first_field_holding_such_text() -> None:
    record = {"id": "1", "a": "fine", "b": "bad \udc00", "c": "\ud800"}
    assert record_text_problem(record, ["id", "a", "missing"]) is None
    problem = record_text_problem(record, ["id", "b", "c"])
    assert problem == "field 'b' holds text that is not valid Unicode (lone surrogate \\udc00)"
    problem.encode("utf-8")  # the message itself can be written anywhere
