"""Declared input fields and the conversion of raw values to their declared types.

A model declares ``fields = {"visits": int, "source": Field(str, choices=[...])}``. Raw values come from JSON
(typed) or files (strings); both are converted by the same rules, one value at a time on the real-time path
(:meth:`FieldCheck.convert`, plain Python) and one column at a time on the batch path
(:meth:`FieldCheck.convert_column`, Arrow compute). The two paths agree value for value.

Rules:

* missing: the key is absent, or the value is ``None``, a float NaN, or a string that is blank or one of
  ``nan``/``none``/``null`` (any case). A missing value takes the field's ``default`` when it has one; otherwise it
  is ``None`` when the field is optional (``required=False`` or ``nullable=True``); otherwise it is a problem.
* ``int``: ints; floats and numeric strings with an integral value (``"12"``, ``"12.0"``, ``"1e3"``). Not bools.
* ``float``: ints, floats and numeric strings, finite only. Not bools.
* ``str``: strings as they are; ints and floats become their ``str()``.
* ``bool``: bools; ``0``/``1``; the strings true/false/yes/no/1/0 in any case.
* any other class: values that are instances of it, unchanged.
* then ``ge``/``le`` bounds and ``choices`` are checked on the converted value.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsm.errors import ModelDefinitionError

__all__ = [
    "MISSING",
    "MISSING_REQUIRED",
    "ColumnResult",
    "Field",
    "FieldCheck",
    "FieldProblem",
    "as_field",
    "compile_fields",
    "show_choices",
    "show_value",
]


class _Missing:
    """Marker for 'no value' (absent key, no default)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

#: The problem of a required field without a value (a result slot words it as the original package did).
MISSING_REQUIRED = "missing (required)"

# ASCII whitespace and digits only: Python's str.strip(), \s and \d know more than Arrow's kernels, and both paths
# must agree value for value
_WHITESPACE = " \t\n\r\f\v"
_NUMBER = r"[ \t\n\r\f\v]*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?[ \t\n\r\f\v]*"
_NUMBER_RE = re.compile(_NUMBER + r"\Z")
_PURE_INT_RE = re.compile(r"[ \t\n\r\f\v]*[-+]?[0-9]+[ \t\n\r\f\v]*\Z")
_MISSING_WORDS = ("", "nan", "none", "null")
_TRUE_WORDS = ("true", "yes", "1")
_FALSE_WORDS = ("false", "no", "0")
# Integers with more digits than this may not survive a float64 round trip; such columns take the exact path.
_SAFE_INT_DIGITS = 15
_SHOW_LIMIT = 80


def show_value(value: Any) -> str:
    """``repr`` of a value for messages, cut at 80 characters."""
    text = repr(value)
    if len(text) > _SHOW_LIMIT:
        text = text[: _SHOW_LIMIT - 3] + "..."
    return text


class Field:
    """One declared input field: its type and its constraints, as data.

    ``Field(int, ge=0)``; ``Field(str, choices=["A", "B"], required=False)``; ``Field(float, default=0.0)``.
    Constraints are checked when records are scored, never here.
    """

    __slots__ = ("choices", "default", "ge", "le", "nullable", "required", "type")

    def __init__(
        self,
        type: type,
        *,
        required: bool = True,
        nullable: bool = False,
        ge: Any = None,
        le: Any = None,
        choices: Iterable[Any] | None = None,
        default: Any = MISSING,
    ) -> None:
        self.type = type
        self.required = required
        self.nullable = nullable
        self.ge = ge
        self.le = le
        self.choices = tuple(choices) if choices is not None else None
        self.default = default

    @property
    def optional(self) -> bool:
        """True when a missing value is allowed (it becomes the default, or None)."""
        return not self.required or self.nullable or self.default is not MISSING

    def _key(self) -> tuple[Any, ...]:
        return (self.type, self.required, self.nullable, self.ge, self.le, self.choices, repr(self.default))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        parts = [getattr(self.type, "__name__", repr(self.type))]
        if not self.required:
            parts.append("required=False")
        if self.nullable:
            parts.append("nullable=True")
        for name in ("ge", "le"):
            if getattr(self, name) is not None:
                parts.append(f"{name}={getattr(self, name)!r}")
        if self.choices is not None:
            parts.append(f"choices={list(self.choices)!r}")
        if self.default is not MISSING:
            parts.append(f"default={self.default!r}")
        return f"Field({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """The field's rules as data, the one description every view renders (``mlsm models``, ``/v1/models``,
        OpenAPI): ``type``, ``required`` (a record without a value gets ``_error`` in the model's slot: not
        :attr:`optional`), and ``nullable``, ``ge``, ``le``, ``choices``, ``default`` when set."""
        info: dict[str, Any] = {"type": getattr(self.type, "__name__", repr(self.type)), "required": not self.optional}
        if self.nullable:
            info["nullable"] = True
        if self.ge is not None:
            info["ge"] = self.ge
        if self.le is not None:
            info["le"] = self.le
        if self.choices is not None:
            info["choices"] = list(self.choices)
        if self.default is not MISSING:
            info["default"] = self.default
        return info

    def describe(self) -> str:
        """Short human description of :meth:`to_dict`: ``int >=0``, ``str in [A, B]``, ``float?`` (optional)."""
        info = self.to_dict()
        text = str(info["type"])
        if "ge" in info:
            text += f" >={info['ge']}"
        if "le" in info:
            text += f" <={info['le']}"
        if "choices" in info:
            text += " in [" + ", ".join(str(c) for c in info["choices"]) + "]"
        if not info["required"]:
            text += "?"
        return text


def as_field(spec: Any) -> Field:
    """A ``Field`` from a field spec: a ``Field`` itself or a bare type such as ``int``."""
    if isinstance(spec, Field):
        return spec
    return Field(spec)


class FieldProblem(Exception):
    """Internal signal: one value breaks one field's rules (becomes data, never escapes the engine)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass
class ColumnResult:
    """A converted column: typed values, which rows are missing, and the problem of each bad row."""

    values: Any  # numpy array: int64, float64, bool or object
    missing: np.ndarray  # True where the value is None for the model (optional field, no default)
    problems: dict[int, str]

    def py_values(self) -> list[Any]:
        """The values as Python objects, ``None`` where missing (what a per-record model receives)."""
        values = self.values.tolist()
        if self.missing.any():
            for i in self.missing.nonzero()[0].tolist():
                values[i] = None
        return values


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    kind = type(value)
    if kind is float:
        return value != value
    if kind is str:
        return value.strip(_WHITESPACE).lower() in _MISSING_WORDS
    if isinstance(value, float):  # numpy floating
        return bool(value != value)
    return type(value).__name__ in ("NAType", "NaTType")


class FieldCheck:
    """A field compiled for checking: ``convert`` one value, ``convert_column`` many.

    ``name`` and ``field`` are what it was made from; ``kind`` is the class values are converted to (``int``,
    ``float``, ``str`` or ``bool`` for those declared types, ``object`` for any other class, whose values are kept
    as they are).
    """

    __slots__ = ("_bounded", "_convert", "field", "kind", "name")

    def __init__(self, name: str, spec: Any) -> None:
        field = as_field(spec)
        if not isinstance(field.type, type):
            raise ModelDefinitionError(
                f"field {name!r}: type must be a class such as int, float, str or bool, got {field.type!r}"
            )
        if (field.ge is not None or field.le is not None) and field.type in (str, bool):
            raise ModelDefinitionError(f"field {name!r}: ge/le apply to numbers, not {field.type.__name__}")
        self.name = name
        self.field = field
        self.kind: type = field.type if field.type in (int, float, str, bool) else object
        self._convert = {int: _to_int, float: _to_float, str: _to_str, bool: _to_bool}.get(
            field.type, self._to_instance
        )
        self._bounded = field.ge is not None or field.le is not None or field.choices is not None

    # -- one value -------------------------------------------------------------------------------------------

    def convert(self, value: Any) -> Any:
        """The value converted to the field's type; ``FieldProblem`` when it breaks a rule."""
        if value is MISSING or _is_missing(value):
            return self.on_missing()
        converted = self._convert(value)
        if self._bounded:
            self._check_bounds(converted)
        return converted

    def on_missing(self) -> Any:
        """The value a missing input becomes: the default, None when optional, else a problem."""
        field = self.field
        if field.default is not MISSING:
            return field.default
        if not field.required or field.nullable:
            return None
        raise FieldProblem(MISSING_REQUIRED)

    def value_range(self) -> tuple[Any, Any]:
        """The smallest and largest value a number field accepts: its ``ge`` and ``le``, else the limits of its
        type (64-bit for ``int``, the infinities for ``float``)."""
        low, high = (_INT_MIN, _INT_MAX) if self.kind is int else (-math.inf, math.inf)
        field = self.field
        return (low if field.ge is None else field.ge, high if field.le is None else field.le)

    def unchanged_choices(self) -> set[str]:
        """The ``choices`` of a ``str`` field that :meth:`convert` returns as they are (each ``str`` choice that is
        not a missing value), so a caller may take such a value without converting it; empty otherwise."""
        if self.kind is not str or self.field.choices is None:
            return set()
        return {choice for choice in self.field.choices if type(choice) is str and not _is_missing(choice)}

    def _to_instance(self, value: Any) -> Any:
        if isinstance(value, self.field.type):
            return value
        raise FieldProblem(f"expected {self.field.type.__name__}, got {show_value(value)}")

    def _check_bounds(self, value: Any) -> None:
        field = self.field
        if field.ge is not None and not value >= field.ge:
            raise FieldProblem(f"must be >= {field.ge!r}, got {show_value(value)}")
        if field.le is not None and not value <= field.le:
            raise FieldProblem(f"must be <= {field.le!r}, got {show_value(value)}")
        if field.choices is not None and value not in field.choices:
            allowed = ", ".join(repr(c) for c in field.choices)
            raise FieldProblem(show_choices(allowed, value))

    # -- one column ------------------------------------------------------------------------------------------

    def from_values(self, values: list[Any]) -> ColumnResult:
        """A column of values already converted by :meth:`convert` (``None`` meaning missing)."""
        missing = np.array([value is None for value in values], dtype=bool)
        fill = _FILL[self.kind]
        filled = [fill if value is None else value for value in values]
        return ColumnResult(_typed_array(filled, self.kind), missing, {})

    def convert_column(self, column: Any, length: int) -> ColumnResult:
        """Convert a whole column (an Arrow array, a Python list, or None for an absent column) at once."""
        if column is None:
            return self._absent_column(length)
        try:
            import pyarrow as pa
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            pa = None
        if pa is not None and isinstance(column, (pa.Array, pa.ChunkedArray)):
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            result = self._convert_arrow(column)
            if result is not None:
                return result
            column = column.to_pylist()
        return self._convert_list(list(column))

    def _absent_column(self, length: int) -> ColumnResult:
        try:
            value = self.on_missing()
        except FieldProblem as exc:
            values = np.empty(length, dtype=object)
            return ColumnResult(values, np.zeros(length, dtype=bool), dict.fromkeys(range(length), exc.problem))
        if value is None:
            return ColumnResult(np.full(length, None, dtype=object), np.ones(length, dtype=bool), {})
        return ColumnResult(_typed_array([value] * length, self.kind), np.zeros(length, dtype=bool), {})

    def _convert_list(self, items: list[Any]) -> ColumnResult:
        values: list[Any] = []
        missing = np.zeros(len(items), dtype=bool)
        problems: dict[int, str] = {}
        convert = self.convert
        fill = _FILL[self.kind]
        for i, item in enumerate(items):
            try:
                value = convert(item)
            except FieldProblem as exc:
                problems[i] = exc.problem
                value = fill
            else:
                if value is None:
                    missing[i] = True
                    value = fill
            values.append(value)
        return ColumnResult(_typed_array(values, self.kind), missing, problems)

    def _convert_arrow(self, column: Any) -> ColumnResult | None:
        """Vectorized conversion of an Arrow array, or None when this column needs the per-value path."""
        import pyarrow as pa
        import pyarrow.compute as pc

        kind = self.kind
        atype = column.type
        n = len(column)
        if pa.types.is_string(atype) or pa.types.is_large_string(atype):
            trimmed = pc.utf8_trim(column, characters=_WHITESPACE)
            missing = _fill(pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(_MISSING_WORDS)), True)
            missing |= _fill(pc.is_null(column), True)
            if kind in (int, float):
                numeric = _fill(pc.match_substring_regex(trimmed, "^" + _NUMBER + "$"), False)
                if kind is int:
                    long = _fill(pc.greater(pc.utf8_length(trimmed), _SAFE_INT_DIGITS), False)
                    if (long & numeric).any():
                        return None
                ok = numeric & ~missing
                floats = pc.cast(pc.if_else(pa.array(ok), trimmed, pa.scalar(None, pa.string())), pa.float64())
                values = _fill_float(floats)
                return self._finish_numeric(column, values, missing, ok)
            if kind is str:
                values = np.array(column.to_pylist(), dtype=object)
                ok = ~missing
                return self._finish(column, values, missing, ok, np.ones(n, dtype=bool))
            if kind is bool:
                lower = pc.utf8_lower(trimmed)
                true = _fill(pc.is_in(lower, value_set=pa.array(_TRUE_WORDS)), False)
                false = _fill(pc.is_in(lower, value_set=pa.array(_FALSE_WORDS)), False)
                ok = (true | false) & ~missing
                return self._finish(column, true, missing, ok, true | false | missing)
            return None
        if pa.types.is_integer(atype) or pa.types.is_floating(atype):
            if kind not in (int, float):
                return None
            if pa.types.is_integer(atype) and kind is int:
                ints = column.to_numpy(zero_copy_only=False)
                if column.null_count:
                    missing = _fill(pc.is_null(column), True)
                    ints = np.where(missing, 0, column.fill_null(0).to_numpy())
                else:
                    missing = np.zeros(n, dtype=bool)
                ok = ~missing
                return self._finish(column, ints.astype(np.int64), missing, ok, np.ones(n, dtype=bool))
            values = _fill_float(pc.cast(column, pa.float64()))
            missing = np.isnan(values)
            return self._finish_numeric(column, values, missing, ~missing)
        if pa.types.is_boolean(atype) and kind is bool:
            missing = _fill(pc.is_null(column), True)
            values = _fill(column, False)
            return self._finish(column, values, missing, ~missing, np.ones(n, dtype=bool))
        return None

    def _finish_numeric(self, column: Any, values: np.ndarray, missing: np.ndarray, ok: np.ndarray) -> ColumnResult:
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(values)
            if self.kind is int:
                integral = finite & (np.floor(values) == values) & (values >= -(2.0**63)) & (values < 2.0**63)
                good = ok & integral
                ints = np.where(good, values, 0).astype(np.int64)
                return self._finish(column, ints, missing, good, good | missing)
        good = ok & finite
        return self._finish(column, np.where(good, values, np.nan), missing, good, good | missing)

    def _finish(
        self, column: Any, values: np.ndarray, missing: np.ndarray, ok: np.ndarray, well_typed: np.ndarray
    ) -> ColumnResult:
        """Apply the missing rule, bounds and choices; describe every bad row."""
        problems: dict[int, str] = {}
        bad_type = ~well_typed
        if bad_type.any():
            name = self.field.type.__name__
            for i in bad_type.nonzero()[0].tolist():
                problems[i] = f"expected {name}, got {show_value(column[i].as_py())}"
        if missing.any():
            try:
                fill = self.on_missing()
            except FieldProblem as exc:
                for i in missing.nonzero()[0].tolist():
                    problems[i] = exc.problem
                missing = np.zeros(len(values), dtype=bool)
            else:
                if fill is None:
                    # typed arrays keep a placeholder under the mask; object arrays hold None itself
                    if values.dtype == object:
                        values = values.copy()
                        values[missing] = None
                else:
                    values = values.astype(object) if not _fits(fill, values) else values.copy()
                    values[missing] = fill
                    missing = np.zeros(len(values), dtype=bool)
        if self._bounded:
            checked = ok & ~missing
            field = self.field
            if field.ge is not None or field.le is not None:
                with np.errstate(invalid="ignore"):
                    low = values >= field.ge if field.ge is not None else np.ones(len(values), dtype=bool)
                    high = values <= field.le if field.le is not None else np.ones(len(values), dtype=bool)
                for i in (checked & ~low).nonzero()[0].tolist():
                    problems[i] = f"must be >= {field.ge!r}, got {show_value(_py(values[i]))}"
                for i in (checked & low & ~high).nonzero()[0].tolist():
                    problems[i] = f"must be <= {field.le!r}, got {show_value(_py(values[i]))}"
                checked &= low & high
            if field.choices is not None:
                allowed_set = set(field.choices)
                inside = np.fromiter((v in allowed_set for v in values.tolist()), dtype=bool, count=len(values))
                allowed = ", ".join(repr(c) for c in field.choices)
                for i in (checked & ~inside).nonzero()[0].tolist():
                    value = values[i]
                    problems[i] = show_choices(allowed, _py(value))
        return ColumnResult(values, missing, problems)


def show_choices(allowed: str, value: Any) -> str:
    """The message for a value outside ``choices``."""
    if len(allowed) > _SHOW_LIMIT:
        allowed = allowed[: _SHOW_LIMIT - 3] + "..."
    return f"must be one of {allowed}, got {show_value(value)}"


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _fits(value: Any, values: np.ndarray) -> bool:
    kind = values.dtype.kind
    if kind == "i":
        return type(value) is int
    if kind == "f":
        return type(value) in (int, float)
    if kind == "b":
        return type(value) is bool
    return True


def _fill(array: Any, value: bool) -> np.ndarray:
    """An Arrow boolean array as numpy, nulls replaced by ``value``."""
    return array.fill_null(value).to_numpy(zero_copy_only=False)


def _fill_float(array: Any) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


_FILL: dict[type, Any] = {int: 0, float: math.nan, bool: False, str: None, object: None}


def _typed_array(values: list[Any], kind: type) -> np.ndarray:
    dtype = {int: np.int64, float: np.float64, bool: np.bool_}.get(kind, object)
    if dtype is not object:
        try:
            return np.array(values, dtype=dtype)
        except (OverflowError, TypeError, ValueError):
            pass
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


# -- per-value converters: plain Python, no pandas, no Arrow ------------------------------------------------------


def _to_int(value: Any) -> int:
    kind = type(value)
    number: Any = None
    if kind is int:
        number = value
    elif kind is str:
        if _PURE_INT_RE.match(value):
            number = int(value)
        elif _NUMBER_RE.match(value):
            number = float(value)
    elif kind is not bool and not isinstance(value, (bool, np.bool_)):
        if isinstance(value, numbers.Integral):
            number = int(value)
        elif isinstance(value, numbers.Real):
            number = float(value)
    if type(number) is float:
        number = int(number) if number.is_integer() else None
    # ints are 64-bit, as they are in every column a batch model receives
    if number is None or not _INT_MIN <= number <= _INT_MAX:
        raise FieldProblem(f"expected int, got {show_value(value)}")
    return int(number)


_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def _to_float(value: Any) -> float:
    kind = type(value)
    if kind is float:
        if math.isfinite(value):
            return value
    elif kind is int:
        return float(value)
    elif kind is str:
        if _NUMBER_RE.match(value):
            number = float(value)
            if math.isfinite(number):
                return number
    elif not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real):
        number = float(value)
        if math.isfinite(number):
            return number
    raise FieldProblem(f"expected float, got {show_value(value)}")


def _to_str(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value
    if isinstance(value, str):
        return str(value)
    if kind is not bool and not isinstance(value, np.bool_) and isinstance(value, numbers.Real):
        if isinstance(value, numbers.Integral):
            return str(int(value))
        return str(float(value))
    raise FieldProblem(f"expected str, got {show_value(value)}")


def _to_bool(value: Any) -> bool:
    kind = type(value)
    if kind is bool:
        return value
    if kind is str:
        word = value.strip(_WHITESPACE).lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    elif isinstance(value, np.bool_) or (isinstance(value, numbers.Real) and value in (0, 1)):
        return bool(value)
    raise FieldProblem(f"expected bool, got {show_value(value)}")


def compile_fields(fields: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> list[FieldCheck]:
    """Compile a model's ``fields`` mapping into checks, raising ``ModelDefinitionError`` on a bad spec."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    checks = []
    for name, spec in items:
        if not isinstance(name, str):
            raise ModelDefinitionError(f"field names must be strings, got {name!r}")
        checks.append(FieldCheck(name, spec))
    return checks
