"""A request body is read exactly as the standard library reads it, whichever parser reads it (orjson first)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlsm.errors import RequestError
from mlsm.service._bodies import decode_json


def typed(value: Any) -> Any:
    """``value`` with each scalar's type beside it: ``1 == 1.0 == True`` would hide a parser's difference."""
    if isinstance(value, dict):
        return ("dict", [(key, typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    if isinstance(value, float):
        return ("float", value.hex())  # -0.0 and 0.0 differ
    return (type(value).__name__, value)


def stdlib(body: bytes) -> Any:
    return json.loads(body, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))


NUMBERS = st.one_of(
    st.integers(),  # beyond 64 bits too: the standard library keeps them whole
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.text(), NUMBERS)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(), children, max_size=4)),
    max_leaves=12,
)


@given(VALUES, st.booleans())
def test_any_json_value_reads_as_the_standard_library_reads_it(value: Any, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert typed(decode_json(body)) == typed(stdlib(body))


@given(st.from_regex(r"\A-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?\Z"))
def test_numbers_as_spelled_read_as_the_standard_library_reads_them(text: str) -> None:
    body = f'{{"n": {text}, "m": [{text}]}}'.encode()
    assert typed(decode_json(body)) == typed(stdlib(body))


@pytest.mark.parametrize(
    "body",
    [
        b'{"income": 123456789012345678901234567890}',  # beyond 64 bits: an int, not a float
        b'{"income": -9223372036854775809}',
        b'{"income": 1e400}',  # infinity, as the standard library reads it (the field rules refuse it)
        b'{"name": "\\udc00"}',  # a lone surrogate escape: read, then refused by the Unicode rule (422)
        b'\xef\xbb\xbf{"a": 1}',  # a byte order mark
        '{"a": "é"}'.encode("utf-16"),
        b'{"a": 1, "a": 2}',  # the last of a repeated key
    ],
)
def test_bodies_orjson_refuses_or_reads_otherwise(body: bytes) -> None:
    assert typed(decode_json(body)) == typed(stdlib(body))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the body is empty"),
        (b"  \n", "the body is empty"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": -Infinity}', "-Infinity is not valid JSON"),
        (b'{"a": 1,}', "Expecting property name"),  # the standard library's message, with its position
        (b'{"a": "\xff"}', "malformed JSON"),
    ],
)
def test_malformed_bodies_are_400_with_the_standard_librarys_message(body: bytes, message: str) -> None:
    with pytest.raises(RequestError) as raised:
        decode_json(body)
    assert raised.value.status == 400
    assert message in str(raised.value)
