"""Request bodies as the service's ``POST`` routes read them: JSON decoded strictly, values described in messages,
text checked by the one Unicode rule and ids by the one id rule, each problem a ``RequestError`` naming it."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from mlsm.errors import InvalidId, RequestError
from mlsm.ids import normalize_id
from mlsm.unicode import text_problem

__all__ = ["check_text", "decode_json", "json_kind", "record_id"]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: A run of digits orjson might not read as the standard library does: an integer beyond 64 bits (orjson makes it a
#: float), or a number too large for a float (orjson refuses it, the standard library reads infinity).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def decode_json(body: bytes) -> Any:
    """The JSON value of a body (NaN and Infinity refused); ``RequestError`` 400 when it is empty or malformed.

    The value is exactly what the standard library's ``json.loads`` reads: orjson (several times faster on a
    request's body) is asked first, and the standard library reads whatever orjson refuses (a lone surrogate escape,
    a byte order mark, UTF-16, malformed JSON: its error message is the one given) or might read otherwise (a body
    with 19 digits in a row)."""
    if _LONG_DIGITS.search(body) is None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    if not body.strip():
        raise RequestError(400, "malformed JSON: the body is empty; send a JSON object")
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RequestError(400, f"malformed JSON: {exc}") from None


def check_text(record: dict[str, Any], where: str) -> None:
    """``RequestError`` 422 naming the field when a key or string in ``record`` (at any depth) is not valid Unicode
    (the one rule of :mod:`mlsm.unicode`): a lone surrogate such as ``"\\udc00"`` is valid JSON, but no model
    frame or store can hold it."""
    for key, value in record.items():
        problem = text_problem(key)
        if problem is not None:
            raise RequestError(422, f"{where}: the field name {key!r} is text that is not valid Unicode ({problem})")
        problem = text_problem(value)
        if problem is not None:
            raise RequestError(422, f"{where}: field {key!r} holds text that is not valid Unicode ({problem})")


def record_id(record: dict[str, Any], id_field: str, where: str) -> str:
    """The id of ``record`` (``where`` names it in messages) by the one id rule, as batch runs store it;
    ``RequestError`` 422 naming the problem."""
    value = record.get(id_field)
    try:
        return normalize_id(value)
    except InvalidId as exc:
        if value is None:
            raise RequestError(422, f"{where} has no {id_field!r} (the id field)") from None
        if exc.missing:
            raise RequestError(422, f"{where} has an empty {id_field!r} (the id field)") from None
        raise RequestError(422, f"{where}: {id_field!r} (the id field) {exc.reason}") from None


def json_kind(value: Any) -> str:
    """What a JSON value is, for messages: ``a string``, ``a number (3)``, ``null``, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
