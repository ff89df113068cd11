"""Outcomes: what happened to a lead (converted or not) and when the decision was made, parsed by one set of rules
and loaded into a store (``mlsm outcomes load``, ``POST /v1/outcomes``).

* The id: the one id rule (:func:`mlsm.ids.normalize_id`), so an outcome joins the documents of its lead however
  either was written.
* The outcome: ``0``/``1`` (numbers too), ``true``/``false``, ``yes``/``no`` in any case; or, when positive labels are
  given, 1 for a value equal to one of them (case and surrounding blanks ignored) and 0 for any other value. No value
  (missing, null, blank) is never an outcome.
* The decision time ``at``: ISO 8601 with or without a zone (UTC when none; a date alone is its midnight UTC), or unix
  seconds (a number, or text holding one); a typed timestamp (Parquet) as it is, UTC when it has no zone. Without a
  time column, the time of the load.

A line that breaks a rule is rejected with its line number and reason, and the load goes on. Stores keep one
current outcome per id (a later load replaces it) and every loaded outcome as history.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from mlsm.errors import InputError, InvalidId, InvalidOutcome
from mlsm.fields import MISSING, show_value
from mlsm.ids import normalize_id
from mlsm.readers import Reader, Reject, SeveralFiles, open_inputs
from mlsm.stores.base import Store
from mlsm.stores.outcomes import Outcome

__all__ = ["NAMES", "LoadSummary", "OutcomeRules", "load_outcomes", "open_outcome_input", "parse_at", "parse_outcome"]

_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# the latest decision time a datetime can show (the end of year 9999): a larger number is a mistake (milliseconds)
_LATEST = 253402300800.0
_REJECT_LINES_KEPT = 20
#: The names of the outcome's and the decision time's fields in a record (the service's JSON).
NAMES = ("outcome", "at")


def _blank(value: Any) -> bool:
    return value is None or value is MISSING or (isinstance(value, str) and not value.strip())


def _float(value: Any) -> float | None:
    """A real number's value (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if hasattr(value, "dtype") and hasattr(value, "item"):  # numpy scalars
            return _float(value.item())
        return None
    return float(value)


def _text(value: Any) -> str:
    """The text an outcome value is matched and kept by: numbers as written (whole floats as ints)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    number = _float(value)
    if number is not None:
        return str(int(number)) if math.isfinite(number) and number.is_integer() else repr(number)
    return str(value).strip()


def parse_outcome(value: Any, positive: Iterable[str] | None = None) -> int:
    """1 or 0 from an outcome value by the module's rules (``positive``: the labels that mean 1; any other value
    is 0); ``InvalidOutcome`` when it is none."""
    if _blank(value):
        raise InvalidOutcome("no outcome: the value is missing or empty")
    if positive is not None:
        labels = {label.strip().casefold() for label in positive}
        return 1 if _text(value).casefold() in labels else 0
    number = _float(value)
    if isinstance(value, bool):
        return int(value)
    if number is not None:
        if number in (0.0, 1.0):
            return int(number)
    elif isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return 1
        if word in _FALSE:
            return 0
    raise InvalidOutcome(
        f"bad outcome: the value is {show_value(value)}, not 0/1, true/false or yes/no (name the values meaning 1 "
        "with --positive)"
    )


def parse_at(value: Any) -> float:
    """Unix seconds from a decision time (ISO 8601 text, UTC when it has no zone; unix seconds; a datetime or a
    date); ``InvalidOutcome`` when it is none."""
    if _blank(value):
        raise InvalidOutcome("no decision time: the value is missing or empty")
    seconds: float | None
    if isinstance(value, _dt.datetime):
        seconds = _utc(value).timestamp()
    elif isinstance(value, _dt.date):
        seconds = _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.UTC).timestamp()
    elif isinstance(value, bool):
        seconds = None
    elif isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        else:
            try:
                seconds = _utc(_dt.datetime.fromisoformat(text)).timestamp()
            except ValueError:
                seconds = None
    else:
        seconds = _float(value)
    if seconds is None or not math.isfinite(seconds):
        raise InvalidOutcome(
            f"bad decision time: the value is {show_value(value)}, not ISO 8601 (2024-05-01T09:30:00Z) or unix seconds"
        )
    if abs(seconds) >= _LATEST:
        raise InvalidOutcome(
            f"bad decision time: the value is {show_value(value)}, unix seconds past the year 9999 (milliseconds?)"
        )
    return seconds


def _in_field(exc: InvalidOutcome, name: str) -> str:
    """A problem's reason naming the field it is in."""
    return exc.reason.replace("the value ", f"field {name!r} ", 1)


def _utc(moment: _dt.datetime) -> _dt.datetime:
    return moment.replace(tzinfo=_dt.UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class OutcomeRules:
    """How one load reads its values: the positive labels (None: the 0/1, true/false, yes/no words), and the load's
    time (``loaded_at``, also every outcome's decision time when the input has no time column)."""

    positive: frozenset[str] | None = None
    loaded_at: float = field(default_factory=time.time)
    source: str | None = None

    def outcome(
        self, id_value: Any, value: Any, at: Any = MISSING, *, has_at: bool = False, names: tuple[str, str] = NAMES
    ) -> Outcome:
        """The outcome of one line or record: its id by the id rule, its value and decision time by the module's
        rules (``has_at``: the input has a time column, so a missing time is an error); ``InvalidId`` or
        ``InvalidOutcome`` (naming the field, by ``names``: the outcome's and the time's) when it breaks one."""
        id_text = normalize_id(id_value)
        try:
            outcome = parse_outcome(value, self.positive)
        except InvalidOutcome as exc:
            raise InvalidOutcome(_in_field(exc, names[0])) from None
        try:
            when = parse_at(at) if has_at else self.loaded_at
        except InvalidOutcome as exc:
            raise InvalidOutcome(_in_field(exc, names[1])) from None
        return Outcome(id_text, outcome, when, self.loaded_at, self.source, _text(value))


@dataclass
class LoadSummary:
    """What a load did: outcomes stored, lines rejected (the first line numbers kept for the summary)."""

    loaded: int = 0
    rejected: int = 0
    reject_lines: list[int | str] = field(default_factory=list)

    def line(self) -> str:
        """``loaded N, rejected M`` (with the first rejected lines)."""
        text = f"loaded {self.loaded:,}, rejected {self.rejected:,}"
        if self.reject_lines:
            more = ", ..." if self.rejected > len(self.reject_lines) else ""
            text += f" (lines {', '.join(str(n) for n in self.reject_lines)}{more})"
        return text


def open_outcome_input(
    path: str, *, id_field: str, outcome: str, at: str | None = None, chunk_size: int = 10_000
) -> Reader:
    """The input of a load, opened for streaming; ``InputError`` (a setup problem) when it cannot be read or lacks
    a named column (JSON lines name no columns up front: a line without them is a reject)."""
    named = [outcome] if at is None else [outcome, at]
    if id_field in named:
        raise InputError(f"--outcome and --at must name other columns than the id field {id_field!r}")
    if at is not None and at == outcome:
        raise InputError(f"--outcome and --at name the same column {outcome!r}")
    reader = open_inputs(path, id_field=id_field, fields=named, chunk_size=chunk_size)
    parts = (
        [reader] if not isinstance(reader, SeveralFiles) else [open_inputs(f, id_field=id_field) for f in reader.files]
    )
    for part in parts:
        missing = [name for name in named if part.columns is not None and name not in part.columns]
        if missing:
            raise InputError(
                f"column {missing[0]!r} is not in {str(part.path)!r}; its columns are: {', '.join(part.columns or [])}"
            )
    return reader


def load_outcomes(
    store: Store,
    path: str,
    *,
    id_field: str,
    outcome: str,
    at: str | None = None,
    positive: Iterable[str] | None = None,
    rejects: IO[str] | None = None,
    chunk_size: int = 10_000,
    on_chunk: Callable[[LoadSummary], None] | None = None,
) -> LoadSummary:
    """Stream outcomes from a CSV, JSON lines or Parquet file (or a directory or glob of them) into ``store``, one
    chunk per transaction; rejected lines go to ``rejects`` as JSON lines (as ``mlsm run`` writes them).

    Setup problems (an unreadable file, a column that is not there) raise ``InputError`` before anything is stored.
    """
    reader = open_outcome_input(path, id_field=id_field, outcome=outcome, at=at, chunk_size=chunk_size)
    rules = OutcomeRules(
        positive=frozenset(positive) if positive is not None else None, source=str(path), loaded_at=time.time()
    )
    summary = LoadSummary()
    for chunk in reader:
        values = _values(chunk.columns.get(outcome), len(chunk))
        times = _values(chunk.columns.get(at), len(chunk)) if at is not None else None
        good: list[Outcome] = []
        bad = list(chunk.rejects)
        for i, id_value in enumerate(chunk.ids):
            when = times[i] if times is not None else MISSING
            try:
                good.append(rules.outcome(id_value, values[i], when, has_at=at is not None, names=(outcome, at or "")))
            except (InvalidOutcome, InvalidId) as exc:
                record = {id_field: id_value, outcome: _plain(values[i])}
                if at is not None:
                    record[at] = _plain(when)
                bad.append(Reject(chunk.lines[i], str(exc), record))
        if good:
            store.write_outcomes(good)
        summary.loaded += len(good)
        if bad:
            bad.sort(key=lambda reject: (reject.file or "", reject.line))
            summary.rejected += len(bad)
            room = _REJECT_LINES_KEPT - len(summary.reject_lines)
            summary.reject_lines.extend(reject.where for reject in bad[: max(room, 0)])
            if rejects is not None:
                rejects.write("".join(reject.to_json() + "\n" for reject in bad))
                rejects.flush()
        if on_chunk is not None:
            on_chunk(summary)
    return summary


def _values(column: Any, n: int) -> list[Any]:
    """A chunk's column as Python values (a column the file lacks: every value missing)."""
    if column is None:
        return [MISSING] * n
    if isinstance(column, list):
        return column
    return list(column.to_pylist())


def _plain(value: Any) -> Any:
    if value is MISSING:
        return None
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value
