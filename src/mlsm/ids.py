"""Record ids: the one rule that turns a value into the text a store keys an id's documents by.

Every path that takes an id calls :func:`normalize_id`: the batch readers (CSV, JSON lines, Parquet), the service
(``POST /v1/score`` and ``GET /v1/results/{id}``) and ``mlsm results``. So one lead has one history however it
arrives, and an id is read back by the same rule it was written with.

* Text is stripped of ASCII whitespace (``" 42 "`` and ``"42\\n"`` are the id ``"42"``, on the way in and on the way
  out), and otherwise kept as it is: ``"042"``, ``"42.0"`` and ``"4.2e1"`` are different ids (an id is a name, not
  a number; only the reader of a typed format knows a value is a number).
* An int is its decimal text; a float with a whole value is the int's text (``42.0`` -> ``"42"``, as JSON writers
  and integer columns with gaps give them), when it is exact (magnitude below 2**53). numpy numbers alike.
* Refused, with the reason: no value (``None``), empty text, booleans, floats that are not whole, not exact or not
  finite (JSON ``1e400`` parses to infinity: never the id ``"inf"``), any other type, text over
  :data:`MAX_ID_LENGTH` characters (so every stored id can be asked for again, in a URL too), and text holding a
  NUL character or a lone surrogate (no store can keep it as text). A batch run rejects such a row; the service
  answers 422.
"""

from __future__ import annotations

import math
from typing import Any

from mlsm.errors import InvalidId
from mlsm.fields import MISSING

__all__ = ["MAX_ID_LENGTH", "normalize_id"]

#: The longest id, in characters, after stripping.
MAX_ID_LENGTH = 512

_WHITESPACE = " \t\n\r\f\v"  # ASCII only: what every store and client agrees is blank
_EXACT_FLOAT = 2.0**53  # floats below this magnitude hold every whole number exactly
_KIND = "an id is text or a whole number"


def normalize_id(value: Any) -> str:
    """The id ``value`` stands for, as stored; ``InvalidId`` (whose ``reason`` completes "the id ...") when it
    cannot be an id."""
    kind = type(value)
    if kind is str:
        text = value.strip(_WHITESPACE)
    elif kind is int:
        try:
            text = str(value)
        except ValueError:  # more digits than Python converts: far over the limit anyway
            raise InvalidId(f"is longer than {MAX_ID_LENGTH} characters") from None
    elif value is None or value is MISSING:
        raise InvalidId("is missing", missing=True)
    elif kind is bool:
        raise InvalidId(f"is a boolean ({value!r}): {_KIND}")
    elif kind is float:
        text = _float_text(value)
    elif hasattr(value, "dtype") and hasattr(value, "item"):  # a numpy scalar: judged as the Python value it holds
        return normalize_id(value.item())
    else:
        raise InvalidId(f"is {_kind_of(value)}: {_KIND}")
    if not text:
        raise InvalidId("is empty", missing=True)
    if len(text) > MAX_ID_LENGTH:
        raise InvalidId(f"is longer than {MAX_ID_LENGTH} characters ({len(text):,})")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidId("holds a lone surrogate (not valid Unicode text)") from None
    if "\x00" in text:
        raise InvalidId("holds a NUL character")
    return text


def _float_text(value: float) -> str:
    if not math.isfinite(value):
        raise InvalidId(f"is not a finite number ({value!r})", missing=value != value)
    if not value.is_integer():
        raise InvalidId(f"is a number that is not whole ({value!r}): send it as text")
    if abs(value) >= _EXACT_FLOAT:
        raise InvalidId(f"is a float too large to be exact ({value!r}): send it as text or as an integer")
    return str(int(value))


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"
