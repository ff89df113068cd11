"""The stored result document and its one JSON encoding.

A document is ``{<id field>: id, '_current': 0, '_timestamp': <unix seconds>, '_run': run id, 'results': ...}``:
the seed's layout plus ``_run``. ``_current`` is 0 for the newest document of an id and counts up for older ones;
stores own it (they renumber on every write).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batch", "decode", "encode", "make_document"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(document: dict[str, Any]) -> str:
    """A document as compact JSON (UTF-8 text, finite numbers only).

    The engine checks every model's output, but a summary model sees (and could change) the others' results; a
    slot that still cannot be encoded is replaced by an error slot here, so one bad slot never loses a document.
    """
    try:
        return _ENCODER.encode(document)
    except (TypeError, ValueError):
        return _ENCODER.encode(_repaired(document))


def _repaired(document: dict[str, Any]) -> dict[str, Any]:
    from .engine import error_slot
    from .outputs import BadOutput, clean_result

    results: dict[str, Any] = {}
    for name, versions in document.get("results", {}).items():
        results[str(name)] = fixed = {}
        for version, slot in versions.items():
            try:
                cleaned = clean_result(slot)
                _ENCODER.encode(cleaned)
                fixed[str(version)] = cleaned
            except (BadOutput, TypeError, ValueError) as exc:
                fixed[str(version)] = error_slot(f"bad output: {exc}")
    return {**document, "results": results}


def decode(text: str | bytes) -> dict[str, Any]:
    """A document from its JSON text."""
    document: dict[str, Any] = json.loads(text)
    return document


def make_document(
    id_field: str, id_value: Any, results: dict[str, Any], *, run: str | None, timestamp: int
) -> dict[str, Any]:
    """A new result document (``_current`` 0); ``run`` None leaves ``_run`` out, as the seed API did."""
    document: dict[str, Any] = {id_field: id_value, "_current": 0, "_timestamp": timestamp}
    if run is not None:
        document["_run"] = run
    document["results"] = results
    return document


@dataclass
class Batch:
    """The documents of one chunk, written to a store in one transaction; JSON encoded at most once."""

    id_field: str
    ids: list[str]
    documents: list[dict[str, Any]]
    run: str | None = None
    _json: list[str] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.documents)

    @classmethod
    def merge(cls, batches: list[Batch]) -> Batch:
        """One batch holding the documents of ``batches`` in order (same id field and run), JSON kept."""
        first = batches[0]
        if len(batches) == 1:
            return first
        merged = cls(first.id_field, [i for b in batches for i in b.ids], [d for b in batches for d in b.documents])
        merged.run = first.run
        merged._json = [text for b in batches for text in b.json()]
        return merged

    def json(self) -> list[str]:
        """Each document as JSON text (cached: a run that also writes ``--output`` encodes once)."""
        if self._json is None:
            self._json = [encode(document) for document in self.documents]
        return self._json
