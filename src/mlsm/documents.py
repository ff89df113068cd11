"""The stored result document and its one JSON encoding.

A document is ``{<id field>: id, '_current': 0, '_timestamp': <unix seconds>, '_run': run id, 'results': ...}``:
the seed's layout plus ``_run``. ``_current`` is 0 for the newest document of an id and counts up for older ones;
stores own it (they renumber on every write).
"""

from __future__ import annotations

import json
import json.encoder
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

__all__ = ["Documents", "decode", "encode", "encode_value", "make_document", "ordered"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _fast_encoder() -> Callable[[Any], str] | None:
    """The C encoder behind ``_ENCODER``, made once and without its circular-reference check.

    ``JSONEncoder.encode`` builds a new C encoder and a dict of the containers it has entered for every call: a
    third of a batch run's encoding time. Documents are trees (their slots are cleaned copies), and a cycle that a
    summary model might still make recurses until ``RecursionError``, where :func:`encode` falls back to
    ``_ENCODER`` (which names the cycle). Same bytes as ``_ENCODER.encode`` for every document; None where Python
    has no C encoder.
    """
    make = getattr(json.encoder, "c_make_encoder", None)  # CPython's _json (untyped in typeshed)
    if make is None:
        return None
    # the arguments JSONEncoder.iterencode passes for _ENCODER's settings, markers None: no cycle check
    c_encode = make(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False)

    def fast(document: Any) -> str:
        return "".join(c_encode(document, 0))

    return fast


_FAST = _fast_encoder()

# types orjson would write and the standard library refuses (dates, dataclasses) or writes its own way (subclasses
# of str, int, dict, list) are handed back, so they take the standard library's path below
_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def encode(document: dict[str, Any]) -> str:
    """A document as compact JSON (UTF-8 text, finite numbers only).

    orjson first (5x the standard library's C encoder on a batch run's documents). It writes NaN and infinity as
    ``null`` where the standard library refuses them, so a text with ``null`` in it (a real None, or a non-finite
    number a summary model put into another model's slot) and whatever orjson refuses (numpy scalars, integers
    beyond 64 bits, lone surrogates) go through the standard library's encoder, whose rules apply as before. (One
    difference is left: a UUID or an enum member that a summary model puts into another model's slot is written as
    orjson writes it, as text or its value, where the standard library refused it; in a model's own output the
    engine's output check refuses a UUID and an enum member that is not also an int or a str.)

    The engine checks every model's output, but a summary model sees (and could change) the others' results; a
    slot that still cannot be encoded is replaced by an error slot here, so one bad slot never loses a document.
    """
    try:
        text = orjson.dumps(document, option=_ORJSON_STRICT)
    except TypeError:  # orjson.JSONEncodeError is one
        pass
    else:
        if b"null" not in text:
            return text.decode()
    try:
        if _FAST is not None:
            try:
                return _FAST(document)
            except RecursionError:  # a cycle (or nesting too deep): the checking encoder says which
                pass
        return _ENCODER.encode(document)
    except (TypeError, ValueError):
        return _ENCODER.encode(_repaired(document))


def encode_value(value: Any) -> str:
    """Any other JSON value in the documents' encoding (an envelope around documents, a flattened slot's list);
    ``TypeError``/``ValueError`` when it cannot be encoded."""
    return _ENCODER.encode(value)


def _repaired(document: dict[str, Any]) -> dict[str, Any]:
    from mlsm.engine._slots import BadOutput, clean_result, error_slot

    results: dict[str, Any] = {}
    for name, versions in document.get("results", {}).items():
        results[str(name)] = fixed = {}
        for version, slot in versions.items():
            try:
                cleaned = clean_result(slot)
                _ENCODER.encode(cleaned)
                fixed[str(version)] = cleaned
            except (BadOutput, TypeError, ValueError) as exc:
                status = slot.get("_status") if isinstance(slot, dict) else None
                status = status if isinstance(status, str) else None  # the slot's own, when it still has one
                fixed[str(version)] = error_slot(f"bad output: {exc}", status=status)
    return {**document, "results": results}


def decode(text: str | bytes) -> dict[str, Any]:
    """A document from its JSON text."""
    document: dict[str, Any] = json.loads(text)
    return document


def ordered(document: dict[str, Any], id_field: str | None) -> dict[str, Any]:
    """``document`` with its keys in the canonical order (stores that do not keep key order call this)."""
    head = ("_current", "_timestamp", "_run", "results")
    first = [id_field] if id_field is not None and id_field in document else []
    out = {key: document[key] for key in [*first, *head] if key in document}
    for key, value in document.items():
        out.setdefault(key, value)
    return out


def make_document(
    id_field: str, id_value: Any, results: dict[str, Any], *, run: str | None, timestamp: int
) -> dict[str, Any]:
    """A new result document (``_current`` 0); ``run`` None leaves ``_run`` out, as the seed API did."""
    document: dict[str, Any] = {id_field: id_value, "_current": 0, "_timestamp": timestamp}
    if run is not None:
        document["_run"] = run
    document["results"] = results
    return document


class Documents:
    """The documents of one chunk, written to a store in one transaction.

    Built from documents (encoded to JSON at most once, when a store or ``--output`` needs the text) or from their
    JSON (decoded only when a store needs the objects, as MongoDB does): scoring in another process or on another
    machine sends the text, never the objects.
    """

    def __init__(
        self,
        id_field: str,
        ids: list[str],
        documents: list[dict[str, Any]] | None = None,
        *,
        run: str | None = None,
        json: list[str] | None = None,
        timestamp: int | None = None,
    ) -> None:
        if documents is None and json is None:
            raise ValueError("Documents need the documents or their JSON")
        self.id_field = id_field
        self.ids = ids
        self.run = run
        self._documents = documents
        self._json = json
        if timestamp is None:
            timestamp = documents[0]["_timestamp"] if documents else int(time.time())
        self.timestamp = timestamp

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def documents(self) -> list[dict[str, Any]]:
        """The documents as dicts."""
        if self._documents is None:
            self._documents = [decode(text) for text in self._json or []]
        return self._documents

    @classmethod
    def merge(cls, batches: list[Documents]) -> Documents:
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
            self._json = [encode(document) for document in self._documents or []]
        return self._json

    def iter_json(self) -> Iterator[str]:
        """Each document as JSON text, encoded as it is consumed (then cached like :meth:`json`).

        A store streaming to a server (PostgreSQL's ``COPY``) encodes the next document while the server parses
        the last one: two cores at work instead of one after the other.
        """
        if self._json is not None:
            yield from self._json
            return
        texts: list[str] = []
        for document in self._documents or []:
            text = encode(document)
            texts.append(text)
            yield text
        self._json = texts
