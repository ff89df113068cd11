"""The store contract every backend implements (``open_store(url)`` in :mod:`mlsm.stores` picks one by URL scheme).

Semantics shared by all backends (checked by one conformance suite, ``tests/stores/test_conformance.py``):

* ``write(batch, ...)`` stores a chunk's documents atomically together with the run's progress; afterwards the
  newest document of each id has ``_current`` 0 and older ones count up. Nothing is ever deleted.
* ``current(id)``, ``history(id)`` (newest first), ``current_documents(model=...)`` (export).
* A run registry: ``start_run``, ``get_run``, ``finish_run``, ``list_runs``; progress (how far a run got) is
  committed with each chunk, so a killed run can resume exactly after its last committed chunk.
* Outcomes (:mod:`mlsm.stores.outcomes`): ``write_outcomes`` (one chunk, atomically; one current outcome per id,
  replaced by a later load, every loaded outcome kept as history), ``outcomes(since, until)``, ``outcome_history(id)``
  and ``outcome_documents`` (each outcome with its id's documents, oldest first), or flat and reduced to each
  document's ``_timestamp`` and ``results``, ``outcome_results`` (the point-in-time join's input).
* Two modes: ``"write"`` (the default) creates the store's tables when missing; ``"read"`` (the read commands)
  opens an existing store and never creates or changes anything: ``StoreNotFound`` when the store does not exist,
  ``StoreError`` on any write.
* Every driver error, on any read or write (an iterator that fails while it is consumed included), reaches the
  caller as ``StoreUnavailable`` (or another ``StoreError``), never as the driver's own exception.
"""

from __future__ import annotations

import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import orjson

from mlsm.documents import Documents
from mlsm.errors import RunError, StoreConfigError, StoreError
from mlsm.stores.outcomes import Outcome, OutcomeDocuments, OutcomeResult, results_of

__all__ = [
    "MODES",
    "ChunkMark",
    "RunRecord",
    "Store",
    "already_written",
    "check_id_field",
    "first_line",
    "has_model",
    "hide_password",
    "newest_per_id",
    "redact_url",
    "split_model",
]

#: How a store can be opened: ``write`` creates what is missing, ``read`` needs an existing store and never writes.
MODES = ("write", "read")


@dataclass
class RunRecord:
    """One run as the store keeps it: what ran, how far it got, and its counts."""

    id: str
    started: float
    status: str = "running"  # running | completed | failed | interrupted
    ended: float | None = None
    rows: int = 0  # input rows consumed (scored and rejected) up to the last committed chunk
    chunks: int = 0
    counts: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``mlsm runs`` prints one per line)."""
        return asdict(self)

    @classmethod
    def new(cls, run_id: str, info: dict[str, Any]) -> RunRecord:
        """A fresh run starting now."""
        return cls(id=run_id, started=time.time(), info=info)

    #: The SQL stores' ``mlsm_runs`` columns, in the order of :meth:`to_row`.
    COLUMNS: ClassVar[str] = "id, started, ended, status, rows, chunks, counts, info"

    def to_row(self) -> tuple[Any, ...]:
        """The run as a SQL row (``COLUMNS`` order), counts and info as JSON text."""
        return (self.id, self.started, self.ended, self.status, self.rows, self.chunks,
                _record_text(self.counts), _record_text(self.info))  # fmt: skip

    def progress_row(self) -> tuple[Any, ...]:
        """What a run's update sets (``ended, status, rows, chunks, counts, info``), then its id."""
        return (*self.to_row()[2:], self.id)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> RunRecord:
        """A run read back from a SQL row (JSON columns as text, or already decoded by the driver)."""
        run_id, started, ended, status, rows, chunks, counts, info = row
        counts, info = (json.loads(v) if isinstance(v, str | bytes) else v for v in (counts, info))
        return cls(
            id=run_id, started=started, ended=ended, status=status, rows=rows, chunks=chunks, counts=counts, info=info
        )


def _record_text(value: dict[str, Any]) -> str:
    """A run record's counts or info as JSON text: orjson (a batch run saves its run, drift profile included, with
    every chunk: 12x the standard library's speed on a 127 KB profile; NaN is written as null, valid JSON where the
    standard library wrote ``NaN``), the standard library for what orjson refuses (integers beyond 64 bits, numpy
    values)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


@dataclass
class ChunkMark:
    """A chunk of a run written out of order (distributed runs): which input rows it held, and its counts.

    Committed with the chunk's documents; a run resumed later skips every chunk that has its mark.
    """

    run: str
    source: str  # the input file
    first: int  # input positions (1-based, scored and rejected rows alike) of the chunk's first and last rows
    last: int
    counts: dict[str, Any] = field(default_factory=dict)

    #: The SQL stores' ``mlsm_run_chunks`` columns, in the order of :meth:`to_row`.
    COLUMNS: ClassVar[str] = "run, source, first, last, counts"

    def to_row(self) -> tuple[Any, ...]:
        """The mark as a SQL row (``COLUMNS`` order), counts as JSON text."""
        return (self.run, self.source, self.first, self.last, json.dumps(self.counts))

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ChunkMark:
        """A mark read back from a SQL row (counts as JSON text, or already decoded by the driver)."""
        run, source, first, last, counts = row
        return cls(run, source, first, last, json.loads(counts) if isinstance(counts, str | bytes) else counts)


def already_written(mark: ChunkMark, overlapping: list[ChunkMark]) -> bool:
    """True when ``mark``'s chunk was committed before; an overlapping but different chunk is an error."""
    for other in sorted(overlapping, key=lambda m: m.first):
        if (other.first, other.last) == (mark.first, mark.last):
            return True
        raise RunError(
            f"run {mark.run!r}: rows {mark.first}-{mark.last} of {mark.source} overlap rows {other.first}-{other.last} "
            "committed before: resume with the same --chunk-size"
        )
    return False


class Store(ABC):
    """A result store. Backends: ``sqlite:///path.db``, ``postgresql://...``, ``mongodb://host/db``."""

    url: str
    mode: str = "write"

    def _writable(self) -> None:
        """Refuse a write to a store opened for reading (called first by every writing method)."""
        if self.mode == "read":
            raise StoreError(f"store {redact_url(self.url)} was opened for reading: it cannot be written")

    @property
    @abstractmethod
    def id_field(self) -> str | None:
        """The field the store's documents are keyed by (set by the first write), or None while it is empty."""

    # -- results ---------------------------------------------------------------------------------------------

    @abstractmethod
    def write(self, batch: Documents, run: RunRecord | None = None) -> None:
        """Store ``batch`` atomically; with ``run``, commit its progress (rows, chunks, counts) with it."""

    @abstractmethod
    def write_chunk(self, batch: Documents, mark: ChunkMark) -> bool:
        """Store ``batch`` and ``mark`` atomically, unless that chunk was committed before (then False, nothing
        written). Writers of one run may call it concurrently, in any order."""

    @abstractmethod
    def chunk_marks(self, run_id: str) -> list[ChunkMark]:
        """The marks of a run's committed chunks, by source and position."""

    @abstractmethod
    def current(self, id_value: str) -> dict[str, Any] | None:
        """The newest document of ``id_value`` (``_current`` 0), or None."""

    @abstractmethod
    def history(self, id_value: str) -> list[dict[str, Any]]:
        """Every document of ``id_value``, newest first (``_current`` 0, 1, 2, ...)."""

    @abstractmethod
    def current_documents(self, model: str | None = None) -> Iterator[dict[str, Any]]:
        """Every id's newest document, by id; with ``model`` (``name@version``), every id's newest document that
        holds that model's result (its current result, though a newer document of the id may lack it)."""

    # -- runs ------------------------------------------------------------------------------------------------

    @abstractmethod
    def start_run(self, run: RunRecord) -> None:
        """Register a new run (its id must be new to this store)."""

    @abstractmethod
    def save_run(self, run: RunRecord) -> None:
        """Update a run's status, progress and counts (used when it ends or resumes)."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None:
        """A run by id, or None."""

    @abstractmethod
    def list_runs(self) -> list[RunRecord]:
        """Every run, oldest first."""

    @abstractmethod
    def run_documents(self, run_id: str) -> Iterator[dict[str, Any]]:
        """Every document written by ``run_id`` (any ``_current``), oldest first; for checks and audits."""

    # -- outcomes --------------------------------------------------------------------------------------------

    @abstractmethod
    def write_outcomes(self, outcomes: list[Outcome]) -> None:
        """Store a chunk of outcomes atomically: each becomes its id's current outcome (the last of an id in the
        chunk wins) and is added to the history; the outcome it replaces stays in the history."""

    @abstractmethod
    def outcomes(self, since: float | None = None, until: float | None = None) -> Iterator[Outcome]:
        """Every id's current outcome with ``since <= at < until`` (a bound None: open), by id."""

    @abstractmethod
    def outcome_history(self, id_value: str) -> list[Outcome]:
        """Every outcome ever loaded for ``id_value``, newest first (the first is the current one)."""

    @abstractmethod
    def outcome_documents(self, since: float | None = None, until: float | None = None) -> Iterator[OutcomeDocuments]:
        """For each current outcome with ``since <= at < until``, by id: the outcome and an iterator over its id's
        result documents, oldest first, without ``_current`` (streamed: memory does not grow with an id's history).
        Consume each inner iterator before taking the next pair."""

    def outcome_results(self, since: float | None = None, until: float | None = None) -> Iterator[OutcomeResult]:
        """What :meth:`outcome_documents` holds, flat and reduced to what the point-in-time join reads: one row
        ``(id, outcome, at, _timestamp, results)`` per outcome and document (by id, each id's documents oldest first),
        or ``(id, outcome, at, None, None)`` for an outcome without documents. Stores override it when they can send
        less than whole documents."""
        return results_of(self.outcome_documents(since, until))

    def recover(self, run: RunRecord) -> None:
        """Undo whatever a killed writer of ``run`` left half-done after its last committed chunk.

        Stores that commit a chunk and its progress in one transaction have nothing to undo (the default).
        """
        return None

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_id_field(store: str, recorded: str | None, id_field: str) -> None:
    """Refuse documents keyed by another field than the one a store's documents already use."""
    if recorded is not None and recorded != id_field:
        raise StoreConfigError(
            f"store {store} holds documents keyed by {recorded!r}, not {id_field!r}: use another store for these"
        )


def split_model(model: str) -> tuple[str, str]:
    """``("name", "version")`` from ``"name@version"``; ``StoreConfigError`` when it has no ``@``."""
    name, at, version = model.rpartition("@")
    if not at or not name or not version:
        raise StoreConfigError(f"invalid model {model!r}: write it as NAME@VERSION, e.g. gbm@1.0")
    return name, version


def has_model(document: dict[str, Any], model: str) -> bool:
    """True when ``document`` holds a result slot for ``name@version``."""
    name, version = split_model(model)
    versions = document.get("results", {}).get(name)
    return isinstance(versions, dict) and any(str(v) == version for v in versions)


def newest_per_id(documents: Iterator[dict[str, Any]], id_field: str) -> Iterator[dict[str, Any]]:
    """The first document of each run of equal ids (documents sorted by id, newest first within an id)."""
    last: Any = object()
    for document in documents:
        if document.get(id_field) != last:
            last = document.get(id_field)
            yield document


def redact_url(url: str) -> str:
    """A URL for messages: quoted, with any password replaced by ``***`` (even in a URL that does not parse)."""
    return repr(hide_password(url))


def hide_password(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``: what is printed or stored in a run record
    (``postgresql://mlsm:secret@db/mlsm`` -> ``postgresql://mlsm:***@db/mlsm``)."""
    return re.sub(r"(://[^/:@\s]*:)[^/@\s]*@", r"\1***@", text)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (driver errors can span many), cut at 300 characters."""
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
