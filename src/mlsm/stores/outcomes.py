"""Outcomes as the stores keep them: what happened to an id (converted or not) and when the decision was made.

Every store keeps two things (see :class:`mlsm.stores.base.Store`, section outcomes):

* the current outcome of each id, one per id: loading an id again replaces it (the last one loaded wins, within a
  chunk too: the last line of the id);
* every outcome ever loaded, as history (``outcome_history(id)``, newest first): a replaced outcome is kept there,
  never deleted, so a correction can be audited.

``at`` is the decision time (unix seconds, a float); the point-in-time join reads an id's result documents up to it.
:func:`grouped` turns the rows of a SQL join (outcome columns, then a document or NULL, ordered by id and time) into
the stream ``Store.outcome_documents`` yields, without holding an id's documents in memory.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

__all__ = [
    "Outcome",
    "OutcomeDocuments",
    "OutcomeResult",
    "grouped",
    "in_window",
    "results_of",
    "scan_document",
    "window_clause",
    "without_rank",
]


@dataclass(frozen=True)
class Outcome:
    """One id's outcome: 1 (converted) or 0, the decision time ``at`` and when it was loaded (unix seconds), and
    where it came from (``source``: the input file or ``"service"``; ``label``: the value as written there)."""

    id: str
    outcome: int
    at: float
    loaded_at: float
    source: str | None = None
    label: str | None = None

    #: The SQL stores' outcome columns, in the order of :meth:`to_row`.
    COLUMNS: ClassVar[str] = "id, outcome, at, loaded_at, source, label"

    def to_row(self) -> tuple[Any, ...]:
        """The outcome as a SQL row (``COLUMNS`` order)."""
        return (self.id, self.outcome, self.at, self.loaded_at, self.source, self.label)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Outcome:
        """An outcome read back from a SQL row (``COLUMNS`` order)."""
        id_value, outcome, at, loaded_at, source, label = row
        return cls(str(id_value), int(outcome), float(at), float(loaded_at), source, label)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


#: What ``Store.outcome_documents`` yields: each outcome with its id's result documents, oldest first. The inner
#: iterator must be consumed before the next pair is taken (as with ``itertools.groupby``); what is left is skipped.
OutcomeDocuments = tuple[Outcome, Iterator[dict[str, Any]]]


#: What ``Store.outcome_results`` yields, one per (outcome, document): the outcome's id, value (0/1) and decision
#: time ``at``, then the document's ``_timestamp`` and ``results``, both None for an outcome without documents.
OutcomeResult = tuple[str, int, float, Any, Any]


def results_of(pairs: Iterator[OutcomeDocuments]) -> Iterator[OutcomeResult]:
    """``Store.outcome_results`` from ``Store.outcome_documents`` (the default of stores with nothing faster)."""
    for outcome, documents in pairs:
        head = (outcome.id, outcome.outcome, outcome.at)
        found = False
        for document in documents:
            found = True
            yield (*head, document["_timestamp"], document["results"])
        if not found:
            yield (*head, None, None)


_SCAN = json.scanner.c_make_scanner(json.JSONDecoder()) if json.scanner.c_make_scanner else None  # type: ignore[attr-defined]


def scan_document(text: str) -> dict[str, Any]:
    """A document from the JSON text a store wrote, as ``json.loads`` reads it but without its per-call wrapping
    (a third faster on small documents; the join decodes millions)."""
    if _SCAN is not None and text[:1] == "{" and text[-1:] == "}":
        document: dict[str, Any] = _SCAN(text, 0)[0]
        return document
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def in_window(at: float, since: float | None, until: float | None) -> bool:
    """Whether a decision time is in ``[since, until)`` (either bound may be None: open)."""
    return (since is None or at >= since) and (until is None or at < until)


def window_clause(
    column: str, since: float | None, until: float | None, placeholder: str
) -> tuple[str, tuple[Any, ...]]:
    """The SQL ``WHERE`` clause of :func:`in_window` on ``column`` (the driver's ``placeholder``: ``?`` or ``%s``),
    with its parameters; empty when both bounds are open."""
    clauses, params = [], []
    if since is not None:
        clauses.append(f"{column} >= {placeholder}")
        params.append(since)
    if until is not None:
        clauses.append(f"{column} < {placeholder}")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def without_rank(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` without ``_current`` (the join's documents come in time order; their rank is not computed)."""
    document.pop("_current", None)
    return document


def grouped(rows: Iterator[tuple[Any, ...]], decode: Callable[[Any], dict[str, Any]]) -> Iterator[OutcomeDocuments]:
    """Pairs from join rows ``(*Outcome.COLUMNS, doc)`` ordered by id then time; ``doc`` None for an outcome without
    documents (a left join). ``decode`` turns a row's ``doc`` into a document."""
    groups = _Groups(iter(rows), decode)
    while groups.row is not None:
        row = groups.row
        outcome = Outcome.from_row(row[:6])
        yield outcome, groups.documents(row[0])
        groups.skip(row[0])


class _Groups:
    """The shared cursor of :func:`grouped`: the next row not yet handed out."""

    __slots__ = ("decode", "row", "rows")

    def __init__(self, rows: Iterator[tuple[Any, ...]], decode: Callable[[Any], dict[str, Any]]) -> None:
        self.rows = rows
        self.decode = decode
        self.row: tuple[Any, ...] | None = next(rows, None)

    def documents(self, id_value: Any) -> Iterator[dict[str, Any]]:
        rows, decode = self.rows, self.decode
        row = self.row
        while row is not None and row[0] == id_value:
            doc = row[6]
            row = self.row = next(rows, None)
            if doc is not None:
                yield decode(doc)

    def skip(self, id_value: Any) -> None:
        while self.row is not None and self.row[0] == id_value:
            self.row = next(self.rows, None)
