"""The one rule for text that is not valid Unicode, shared by the batch readers and the service.

JSON may spell a lone surrogate (``"\\udc00"``): Python parses it into a ``str`` that no UTF-8 file, store or
response can hold, so a record whose id or whose fields the models read hold one is refused, as a whole, with the
field named (a reject in a batch run, a 4xx in the service). Replacing the character instead would change the data
silently, and for an id could make two different ids one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["record_text_problem", "text_problem"]


def text_problem(value: Any) -> str | None:
    """What makes ``value`` not valid Unicode text (``"lone surrogate \\udc00"``), or None when it is valid.

    Strings are checked, and the strings inside lists, tuples and dicts (keys included), at any depth; other values
    (numbers, None, ...) are valid.
    """
    if type(value) is str:  # the common case, kept fast
        return None if value.isascii() else _str_problem(value)
    stack = [value]
    while stack:  # a loop, not recursion: a value nested deeper than the interpreter's stack is still checked
        item = stack.pop()
        if isinstance(item, str):
            problem = None if item.isascii() else _str_problem(item)
            if problem is not None:
                return problem
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def record_text_problem(record: Mapping[str, Any], names: Iterable[str]) -> str | None:
    """The first of ``names`` whose value in ``record`` is not valid Unicode text, as one line naming the field
    (``"field 'x' holds text that is not valid Unicode (lone surrogate \\udc00)"``); None when all are valid."""
    for name in names:
        problem = text_problem(record.get(name))
        if problem is not None:
            return f"field {name!r} holds text that is not valid Unicode ({problem})"
    return None


def _str_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"lone surrogate \\u{ord(text[exc.start]):04x}"
    return None
